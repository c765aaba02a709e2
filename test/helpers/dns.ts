/**
 * A tiny authoritative DNS server on 127.0.0.1 (UDP, port 0) whose answers a test changes at
 * will: A records with a TTL, SRV records, NXDOMAIN for unknown names. Point the gateway at it
 * with PORTCULLIS_DNS_RESOLVER=127.0.0.1:<port>.
 */
import dns2 from 'dns2';

export interface TestDns {
  readonly port: number;
  readonly resolver: string;
  /** A records of `name` (empty: NXDOMAIN). */
  setA(name: string, ips: string[], ttl?: number): void;
  setSrv(name: string, records: { target: string; port: number; weight: number; priority: number }[], ttl?: number): void;
  /** Queries received per name. */
  queries(name: string): number;
  close(): Promise<void>;
}

export async function startDns(): Promise<TestDns> {
  const { Packet } = dns2;
  const a = new Map<string, { ips: string[]; ttl: number }>();
  const srv = new Map<string, { records: { target: string; port: number; weight: number; priority: number }[]; ttl: number }>();
  const counts = new Map<string, number>();
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const [q] = request.questions;
      const name = q.name.toLowerCase();
      counts.set(name, (counts.get(name) ?? 0) + 1);
      if (q.type === Packet.TYPE.A && a.has(name)) {
        const e = a.get(name)!;
        for (const ip of e.ips) response.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: e.ttl, address: ip } as never);
      } else if (q.type === Packet.TYPE.SRV && srv.has(name)) {
        const e = srv.get(name)!;
        for (const r of e.records) response.answers.push({ name: q.name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: e.ttl, ...r } as never);
      } else if (!a.has(name) && !srv.has(name)) {
        response.header.rcode = 3; // NXDOMAIN
      }
      send(response);
    },
  });
  const listening = new Promise<void>((resolve) => server.on('listening', () => resolve()));
  await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  await listening;
  const port = (server.addresses() as { udp: { port: number } }).udp.port;
  return {
    port,
    resolver: `127.0.0.1:${port}`,
    setA(name, ips, ttl = 1) {
      if (ips.length === 0) a.delete(name.toLowerCase());
      else a.set(name.toLowerCase(), { ips, ttl });
    },
    setSrv(name, records, ttl = 1) {
      srv.set(name.toLowerCase(), { records, ttl });
    },
    queries: (name) => counts.get(name.toLowerCase()) ?? 0,
    close: () => server.close(),
  };
}
