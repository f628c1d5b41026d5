// Child processes for servers under test: started, awaited until they say
// they listen, and always killed when the test ends.
import { spawn } from 'node:child_process';
import net from 'node:net';

export const REPO = new URL('../../../', import.meta.url).pathname;

export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Spawns `cmd args`, resolves once `ready(line)` is true for an output line.
export async function startProcess(label, cmd, args, { ready, env = {}, timeoutMs = 30000 } = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const ok = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: not ready after ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
    const onData = (chunk) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        lines.push(line);
        if (process.env.VERBOSE) console.error(`[${label}] ${line}`);
        if (ready(line)) {
          clearTimeout(timer);
          resolve();
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code}) before it was ready:\n${lines.join('\n')}`));
    });
    child.on('error', reject);
  });
  await ok;
  return {
    child,
    lines,
    // SIGTERM (SIGKILL after 10 s); `signal` to send another one first.
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
      const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}
