/** `$inCidr` and its address arithmetic, checked against Node's own net.BlockList. */
import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { compileExpression } from '../../src/engine/expression.ts';
import { inCidr, parseAddress, parseCidr } from '../../src/engine/network.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

describe('inCidr', () => {
  it('answers for IPv4, IPv6, IPv4-mapped IPv6 and lists of ranges', () => {
    expect(inCidr('192.168.1.7', '192.168.1.0/24')).toBe(true);
    expect(inCidr('192.168.2.7', '192.168.1.0/24')).toBe(false);
    expect(inCidr('::ffff:192.168.1.9', '192.168.1.0/24')).toBe(true);
    expect(inCidr('fd12::1', ['10.0.0.0/8', 'fd00::/8'])).toBe(true);
    expect(inCidr('fe80::1', ['10.0.0.0/8', 'fd00::/8'])).toBe(false);
    expect(inCidr('10.0.0.1', '0.0.0.0/0')).toBe(true);
    expect(inCidr('10.0.0.1', '10.0.0.1')).toBe(true);
    // PostgreSQL's inet text of a host carries /32.
    expect(inCidr('10.20.30.40/32', '10.20.0.0/16')).toBe(true);
  });

  it('gives nothing for a missing address, false for text that is none, and an error for a bad range', () => {
    expect(inCidr(undefined, '10.0.0.0/8')).toBeUndefined();
    expect(inCidr(null, '10.0.0.0/8')).toBeUndefined();
    expect(inCidr('unknown', '10.0.0.0/8')).toBe(false);
    expect(inCidr(42, '10.0.0.0/8')).toBe(false);
    expect(() => inCidr('10.0.0.1', '10.0.0/8')).toThrow(/not a CIDR range/);
    expect(() => inCidr('10.0.0.1', '10.0.0.0/33')).toThrow(/0-32/);
    expect(() => inCidr('10.0.0.1', 7)).toThrow(/must be text/);
  });

  it('agrees with net.BlockList on random IPv4 and IPv6 addresses and ranges', () => {
    const random = mulberry32(7);
    const byte = () => Math.floor(random() * 256);
    for (let i = 0; i < 500; i++) {
      const v4 = i % 2 === 0;
      const prefix = Math.floor(random() * (v4 ? 33 : 129));
      const net = v4 ? [byte(), byte(), byte(), byte()].join('.') : Array.from({ length: 8 }, () => ((byte() << 8) | byte()).toString(16)).join(':');
      // Half the addresses share the range's first bytes, so both answers occur.
      const near = v4 ? net.split('.').slice(0, 2).concat([String(byte()), String(byte())]).join('.') : net.split(':').slice(0, 4).concat(['1', '2', '3', (byte()).toString(16)]).join(':');
      const far = v4 ? [byte(), byte(), byte(), byte()].join('.') : Array.from({ length: 8 }, () => byte().toString(16)).join(':');
      const list = new BlockList();
      list.addSubnet(net, prefix, v4 ? 'ipv4' : 'ipv6');
      for (const address of [near, far]) {
        expect(inCidr(address, `${net}/${prefix}`), `${address} in ${net}/${prefix}`).toBe(list.check(address, v4 ? 'ipv4' : 'ipv6'));
      }
    }
  });

  it('parses compressed IPv6 and the embedded IPv4 tail', () => {
    expect(parseAddress('::1')).toEqual({ family: 6, value: 1n });
    expect(parseAddress('::ffff:10.0.0.1')).toEqual({ family: 4, value: (10n << 24n) | 1n });
    expect(parseCidr('2001:db8::/32')).toEqual({ family: 6, base: 0x20010db8n << 96n, prefix: 32 });
  });

  it('is the JSONata function $inCidr', async () => {
    const expr = compileExpression('$inCidr(ip_address, "192.168.1.0/24") ? "office" : "outside"');
    expect(await expr.evaluate({ ip_address: '192.168.1.20' })).toBe('office');
    expect(await expr.evaluate({ ip_address: '203.0.113.5' })).toBe('outside');
  });
});
