import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import fc from "fast-check";
import {
  AddressError,
  formatAddress,
  isIPv4,
  isThisMachine,
  parseAddress,
  sameAddress,
  specialAddress,
} from "../lib/address.ts";

const PEER = { defaultPort: 7777 };

Deno.test("isIPv4: dotted quads 0–255 without leading zeros", () => {
  for (const ip of ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.2.3"]) {
    strictEqual(isIPv4(ip), true, ip);
  }
  for (
    const ip of [
      "",
      "127.0.0",
      "127.0.0.1.1",
      "256.0.0.1",
      "127.0.0.01",
      "1e2.0.0.1",
      " 127.0.0.1",
      "127.0.0.1 ",
      "localhost",
      "::1",
      "127.0.0.-1",
      "1".repeat(10_000),
    ]
  ) {
    strictEqual(isIPv4(ip), false, ip);
  }
});

Deno.test("specialAddress: wildcard, broadcast, multicast and reserved addresses are named", () => {
  strictEqual(specialAddress("0.0.0.0"), "the wildcard address");
  strictEqual(specialAddress("255.255.255.255"), "the broadcast address");
  strictEqual(specialAddress("224.0.0.1"), "a multicast address");
  strictEqual(specialAddress("239.255.255.255"), "a multicast address");
  strictEqual(specialAddress("240.0.0.1"), "a reserved address (240.0.0.0/4)");
  strictEqual(specialAddress("127.0.0.2"), undefined);
  strictEqual(specialAddress("223.255.255.255"), undefined);
});

Deno.test("formatAddress and sameAddress", () => {
  strictEqual(formatAddress({ ip: "127.0.0.2", port: 7777 }), "127.0.0.2:7777");
  strictEqual(
    sameAddress({ ip: "127.0.0.2", port: 1 }, { ip: "127.0.0.2", port: 1 }),
    true,
  );
  strictEqual(
    sameAddress({ ip: "127.0.0.2", port: 1 }, { ip: "127.0.0.2", port: 2 }),
    false,
  );
  strictEqual(sameAddress(undefined, { ip: "127.0.0.2", port: 1 }), false);
});

Deno.test("parseAddress: ip, ip:port, localhost, spaces around", () => {
  deepStrictEqual(parseAddress("127.0.0.2", PEER), {
    ip: "127.0.0.2",
    port: 7777,
  });
  deepStrictEqual(parseAddress("127.0.0.2:9000", PEER), {
    ip: "127.0.0.2",
    port: 9000,
  });
  deepStrictEqual(parseAddress("localhost", PEER), {
    ip: "127.0.0.1",
    port: 7777,
  });
  deepStrictEqual(parseAddress(" LocalHost:7778 ", PEER), {
    ip: "127.0.0.1",
    port: 7778,
  });
  deepStrictEqual(parseAddress("10.0.0.1", { defaultPort: 7778 }), {
    ip: "10.0.0.1",
    port: 7778,
  });
});

Deno.test("parseAddress: refuses what is not one daemon's address, saying what to type", () => {
  const cases: [string, RegExp][] = [
    ["bob", /^"bob" is not an IPv4 address: type one such as 127\.0\.0\.2/],
    ["127.0.0.2:", /is not an IPv4 address/],
    ["127.0.0.2:123456", /is not an IPv4 address/],
    ["127.0.0.2:0", /^Port 0 is out of range: use 1 to 65535/],
    ["127.0.0.2:65536", /^Port 65536 is out of range/],
    ["0.0.0.0", /^0\.0\.0\.0 is the wildcard address, not a user's daemon/],
    ["224.0.0.1:7777", /is a multicast address/],
    ["[::1]:7777", /is not an IPv4 address/],
  ];
  for (const [text, message] of cases) {
    throws(() => parseAddress(text, PEER), (error: unknown) => {
      strictEqual(error instanceof AddressError, true);
      strictEqual(message.test((error as Error).message), true, text);
      return true;
    });
  }
});

Deno.test("parseAddress: any input gives an address or an AddressError with a short message", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (text) => {
      try {
        const address = parseAddress(text, PEER);
        strictEqual(isIPv4(address.ip), true);
        strictEqual(address.port >= 1 && address.port <= 65_535, true);
      } catch (error) {
        strictEqual(error instanceof AddressError, true);
        // The user's text is quoted, cut to 40 characters.
        strictEqual((error as Error).message.length < 200, true);
      }
    }),
  );
});

Deno.test("isThisMachine: loopback, or an IPv4 address of an interface (§7.2)", () => {
  const interfaces = [
    { family: "IPv4", address: "192.168.1.5" },
    { family: "IPv6", address: "fe80::1" },
  ];
  strictEqual(isThisMachine("127.0.0.1", interfaces), true);
  strictEqual(isThisMachine("127.255.1.9", interfaces), true);
  strictEqual(isThisMachine("::ffff:127.0.0.1", interfaces), true);
  strictEqual(isThisMachine("192.168.1.5", interfaces), true);
  strictEqual(isThisMachine("192.168.1.6", interfaces), false);
  strictEqual(isThisMachine("192.0.2.7", []), false);
  strictEqual(isThisMachine("fe80::1", interfaces), false);
  strictEqual(isThisMachine("128.0.0.1", interfaces), false);
  strictEqual(isThisMachine("", interfaces), false);
});
