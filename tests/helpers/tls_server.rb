# tls_server.rb - tls_server.rs's protocol in Ruby: a TCPServer with a Thread
# per client; the VM keeps its current execution context in thread-local
# data (ruby_current_ec), and each reply carries a thread-local counter
# (Thread#[]) and the thread's name.  Serves ARGV[0] clients, then prints
# "served N clients, M lines".
require 'socket'

clients = (ARGV[0] || 50).to_i
server = TCPServer.new('127.0.0.1', 0)
puts "port #{server.addr[1]}"
$stdout.flush
lock = Mutex.new
changed = ConditionVariable.new
live = 0
served = 0
total = 0
threads = clients.times.map do |id|
  sock = server.accept
  lock.synchronize { live += 1 }
  Thread.new(sock, id) do |c, i|
    Thread.current.name = "conn#{i}"
    Thread.current[:lines] = 0
    while (line = c.gets)
      Thread.current[:lines] += 1
      c.write("#{Thread.current.name} #{Thread.current[:lines]} #{line}")
    end
    c.close
    lock.synchronize do
      live -= 1
      served += 1
      total += Thread.current[:lines]
      changed.signal
    end
  end
end
lock.synchronize { changed.wait(lock) while live > 0 }
threads.each(&:join)
puts "served #{served} clients, #{total} lines"
