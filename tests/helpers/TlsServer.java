// TlsServer.java - tls_server.rs's protocol in Java: a thread per client,
// a ThreadLocal counter, synchronized/wait/notify for the live count.
// Serves args[0] clients, then prints "served N clients, M lines".
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;

public class TlsServer {
    static final ThreadLocal<Integer> LINES = ThreadLocal.withInitial(() -> 0);
    static final Object lock = new Object();
    static int live, served, total;

    public static void main(String[] args) throws Exception {
        int clients = args.length > 0 ? Integer.parseInt(args[0]) : 50;
        ServerSocket server = new ServerSocket(0, 100, InetAddress.getByName("127.0.0.1"));
        System.out.println("port " + server.getLocalPort());
        System.out.flush();
        Thread[] ts = new Thread[clients];
        for (int id = 0; id < clients; id++) {
            Socket s = server.accept();
            synchronized (lock) { live++; }
            ts[id] = new Thread(() -> serve(s), "conn" + id);
            ts[id].start();
        }
        synchronized (lock) { while (live > 0) lock.wait(); }
        for (Thread t : ts) t.join();
        System.out.println("served " + served + " clients, " + total + " lines");
    }

    static void serve(Socket s) {
        try (s) {
            BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            Writer w = new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8);
            String line;
            while ((line = r.readLine()) != null) {
                LINES.set(LINES.get() + 1);
                w.write(Thread.currentThread().getName() + " " + LINES.get() + " " + line + "\n");
                w.flush();
            }
        } catch (IOException e) {
            // the client went away: count what was served
        }
        synchronized (lock) {
            live--;
            served++;
            total += LINES.get();
            lock.notifyAll();
        }
    }
}
