// tls_server.rs - a thread-per-connection line server written the way Rust
// programs are: std::thread (with names, so thread::current() matters),
// Mutex and Condvar for the count of live connections, an mpsc channel to
// a collector thread, and thread_local! state per connection.  Each reply
// is "NAME COUNT LINE": NAME from thread::current(), COUNT from a
// thread_local! counter, so a thread that saw another's thread-local data
// answers wrongly.  It serves CLIENTS connections (argument 1), then prints
// "served N clients, M lines" and exits.
use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;

thread_local! {
    static LINES: Cell<u64> = Cell::new(0);
    static GREETING: RefCell<String> = RefCell::new(String::new());
}

// Dropped at each connection thread's exit (a thread_local destructor).
struct Farewell(mpsc::Sender<u64>);
impl Drop for Farewell {
    fn drop(&mut self) {
        let _ = self.0.send(LINES.with(|c| c.get()));
    }
}
thread_local! {
    static FAREWELL: RefCell<Option<Farewell>> = RefCell::new(None);
}

fn serve(stream: TcpStream, tx: mpsc::Sender<u64>, live: Arc<(Mutex<usize>, Condvar)>) {
    let name = thread::current().name().unwrap_or("?").to_string();
    GREETING.with(|g| *g.borrow_mut() = name.clone());
    FAREWELL.with(|f| *f.borrow_mut() = Some(Farewell(tx)));
    let mut w = stream.try_clone().expect("clone");
    for line in BufReader::new(stream).lines() {
        let line = match line {
            Ok(l) => l,
            Err(_) => break,
        };
        let n = LINES.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        let who = GREETING.with(|g| g.borrow().clone());
        let me = thread::current().name().unwrap_or("?").to_string();
        let tag = if who == me { who } else { format!("{}!={}", who, me) };
        if writeln!(w, "{} {} {}", tag, n, line).is_err() {
            break;
        }
    }
    let (m, cv) = &*live;
    *m.lock().unwrap() -= 1;
    cv.notify_all();
}

fn main() {
    let clients: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("port {}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    let (tx, rx) = mpsc::channel::<u64>();
    let collector = thread::spawn(move || {
        let (mut n, mut total) = (0u64, 0u64);
        for lines in rx {
            n += 1;
            total += lines;
        }
        (n, total)
    });
    let live = Arc::new((Mutex::new(0usize), Condvar::new()));
    let mut handles = Vec::new();
    for id in 0..clients {
        let (s, _) = listener.accept().expect("accept");
        *live.0.lock().unwrap() += 1;
        let (tx, live) = (tx.clone(), live.clone());
        handles.push(
            thread::Builder::new()
                .name(format!("conn{}", id))
                .spawn(move || serve(s, tx, live))
                .expect("spawn"),
        );
    }
    drop(tx);
    {
        let (m, cv) = &*live;
        let mut n = m.lock().unwrap();
        while *n > 0 {
            n = cv.wait(n).unwrap();
        }
    }
    for h in handles {
        h.join().expect("join");
    }
    let (n, total) = collector.join().unwrap();
    println!("served {} clients, {} lines", n, total);
}
