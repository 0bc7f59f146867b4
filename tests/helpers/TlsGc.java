// TlsGc.java - HotSpot's own threads at work beside a program's: a pool of
// 8 threads allocating (the GC runs many times, its worker threads beside
// them; the JIT compiles the loop) with a ThreadLocal each, and futures
// joined by main.  Prints the same total natively and greened.
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class TlsGc {
    static final ThreadLocal<long[]> MINE = ThreadLocal.withInitial(() -> new long[1]);

    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(8);
        List<Future<Long>> parts = new ArrayList<>();
        for (int t = 0; t < 16; t++) {
            final int task = t;
            parts.add(pool.submit(() -> {
                long[] mine = MINE.get();
                mine[0] = 0;
                for (int i = 0; i < 100000; i++) {
                    byte[] b = new byte[256 + (i % 2048)];
                    List<Integer> l = new ArrayList<>();
                    for (int j = 0; j < 8; j++)
                        l.add(j + task);
                    mine[0] += b.length + l.get(7);
                    if (MINE.get() != mine)
                        throw new IllegalStateException("another thread's ThreadLocal");
                }
                return mine[0];
            }));
        }
        long total = 0;
        for (Future<Long> f : parts)
            total += f.get();
        pool.shutdown();
        System.out.println("total " + total);
    }
}
