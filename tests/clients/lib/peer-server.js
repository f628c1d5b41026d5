// The reference PeerJS server (npm peer@1.0.2) in its own process, so its
// memory can be measured apart from the load generator's.
// usage: node peer-server.js PORT [CONCURRENT_LIMIT]
import { PeerServer } from 'peer';

const port = Number(process.argv[2] ?? 9000);
const limit = Number(process.argv[3] ?? 5000);
PeerServer(
  { host: '127.0.0.1', port, path: '/p2p-signaling', concurrent_limit: limit },
  (server) => console.log(`listening on 127.0.0.1:${server.address().port}`),
);
process.on('SIGTERM', () => process.exit(0));
