// tls_node_mix.js - node's usual mix, each part on libuv's thread pool or
// V8's platform threads: fs (write, read, stat, readdir), dns.lookup,
// crypto (pbkdf2, scrypt, randomBytes, hashes), zlib, and an HTTP server
// with 20 clients.  Prints "node mix ok" when everything finished.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const dns = require('dns').promises;
const crypto = require('crypto');
const zlib = require('zlib');
const http = require('http');
const util = require('util');

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls_node_mix.'));
  try {
    await Promise.all([...Array(8).keys()].map(async (i) => {
      const f = path.join(dir, 'f' + i);
      await fs.promises.writeFile(f, 'x'.repeat(10000 + i));
      const back = await fs.promises.readFile(f, 'utf8');
      if (back.length !== 10000 + i) throw new Error('fs read back ' + back.length);
      await fs.promises.stat(f);
    }));
    if ((await fs.promises.readdir(dir)).length !== 8) throw new Error('readdir');
    const addrs = await dns.lookup('localhost', { all: true });
    if (!addrs.length) throw new Error('dns');
    const pbkdf2 = util.promisify(crypto.pbkdf2), scrypt = util.promisify(crypto.scrypt);
    const keys = await Promise.all([...Array(6).keys()].map((i) =>
      pbkdf2('secret' + i, 'salt', 20000, 32, 'sha256')));
    if (new Set(keys.map((k) => k.toString('hex'))).size !== 6) throw new Error('pbkdf2');
    await scrypt('secret', 'salt', 32);
    crypto.randomBytes(64);
    crypto.createHash('sha512').update('abc').digest('hex');
    const gz = await util.promisify(zlib.gzip)(Buffer.alloc(100000, 'a'));
    if ((await util.promisify(zlib.gunzip)(gz)).length !== 100000) throw new Error('zlib');
    const server = http.createServer((req, res) => res.end('hello ' + req.url));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const port = server.address().port;
    const bodies = await Promise.all([...Array(20).keys()].map((i) => new Promise((ok, bad) => {
      http.get({ host: '127.0.0.1', port, path: '/' + i, agent: false }, (res) => {
        let b = '';
        res.on('data', (d) => { b += d; });
        res.on('end', () => ok(b));
      }).on('error', bad);
    })));
    server.close();
    bodies.forEach((b, i) => { if (b !== 'hello /' + i) throw new Error('http ' + b); });
    console.log('node mix ok');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
