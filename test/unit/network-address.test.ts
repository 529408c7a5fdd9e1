// The SSRF guard's address classification: what a webhook or blocking hook may
// reach outside development mode (public unicast only).
import { describe, expect, it } from "vitest";
import { isIpLiteral, isPrivateHostName, isPublicAddress } from "../../src/domain/network-address.ts";

describe("isPublicAddress", () => {
  it.each([
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "[::1]",
    "::ffff:127.0.0.1",
    "[::ffff:7f00:1]",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",
    "2002:7f00:1::",
    "fe80::1",
    "fe80::1%eth0",
    "fd00::1",
    "fc00::1",
    "ff02::1",
  ])("refuses %s", (address) => {
    expect(isIpLiteral(address)).toBe(true);
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(["8.8.8.8", "1.1.1.1", "172.32.0.1", "93.184.216.34", "2606:4700::1111", "[2a00:1450:4007:80f::200e]", "::ffff:8.8.8.8"])("accepts %s", (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it("is false for what is not an address", () => {
    for (const text of ["example.com", "1::2::3", "300.1.1.1", "1.2.3", ""]) {
      expect(isIpLiteral(text)).toBe(false);
      expect(isPublicAddress(text)).toBe(false);
    }
  });

  it("names that always mean a private host", () => {
    for (const name of ["localhost", "LOCALHOST.", "api.localhost", "metadata.google.internal", "printer.local"]) expect(isPrivateHostName(name)).toBe(true);
    for (const name of ["example.com", "localhost.example.com"]) expect(isPrivateHostName(name)).toBe(false);
  });
});
