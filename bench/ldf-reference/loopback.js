// Preloaded by bench/tpf_bench.py (node -r ./loopback.js): the reference server calls
// server.listen(port), i.e. on every interface; the benchmark keeps it on 127.0.0.1.
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function'))
    args.splice(1, 0, '127.0.0.1');
  return listen.apply(this, args);
};
