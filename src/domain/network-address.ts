// Which network addresses an outgoing webhook or blocking hook may reach (SSRF
// guard): public unicast only, unless the operator allows private networks
// (WEBHOOK_ALLOW_PRIVATE_NETWORKS) or runs in development mode. Pure parsing
// (the domain does no networking): the delivery side resolves names and asks
// `isPublicAddress` about every address before it connects.

function ipv4Octets(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const octets = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : Number.NaN));
  return octets.every((o) => o >= 0 && o <= 255) ? octets : undefined;
}

function isPublicIpv4([a, b, c]: number[]): boolean {
  if (a === 0 || a === 10 || a === 127) return false; // "this" network, private, loopback
  if (a === 100 && b! >= 64 && b! <= 127) return false; // carrier-grade NAT
  if (a === 169 && b === 254) return false; // link-local, cloud metadata (169.254.169.254)
  if (a === 172 && b! >= 16 && b! <= 31) return false;
  if (a === 192 && b === 168) return false;
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return false; // protocol assignments, TEST-NET-1
  if (a === 198 && (b === 18 || b === 19)) return false; // benchmarking
  if (a === 198 && b === 51 && c === 100) return false; // TEST-NET-2
  if (a === 203 && b === 0 && c === 113) return false; // TEST-NET-3
  return a! < 224; // not multicast (224/4) nor reserved (240/4, broadcast)
}

/** The eight 16-bit groups of an IPv6 address (brackets allowed), or undefined. */
function ipv6Groups(raw: string): number[] | undefined {
  let text = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  if (!text.includes(":")) return undefined;
  const lastColon = text.lastIndexOf(":");
  const v4 = ipv4Octets(text.slice(lastColon + 1));
  if (v4) text = `${text.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? Number.parseInt(g, 16) : Number.NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const known = head.length + rest.length;
  if (head.some(Number.isNaN) || rest.some(Number.isNaN)) return undefined;
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined;
  return [...head, ...Array<number>(8 - known).fill(0), ...rest];
}

function isPublicIpv6(g: number[]): boolean {
  const v4 = (hi: number, lo: number) => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
  if (g.slice(0, 7).every((x) => x === 0)) return false; // :: and ::1
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return isPublicIpv4(v4(g[6]!, g[7]!)); // IPv4-mapped
  if (g.slice(0, 6).every((x) => x === 0)) return isPublicIpv4(v4(g[6]!, g[7]!)); // IPv4-compatible (deprecated)
  if (g[0] === 0x64 && g[1] === 0xff9b) return isPublicIpv4(v4(g[6]!, g[7]!)); // NAT64
  if (g[0] === 0x2002) return isPublicIpv4(v4(g[1]!, g[2]!)); // 6to4
  const first = g[0]!;
  if ((first & 0xfe00) === 0xfc00) return false; // unique local fc00::/7
  if ((first & 0xffc0) === 0xfe80 || (first & 0xffc0) === 0xfec0) return false; // link-local, site-local
  if ((first & 0xff00) === 0xff00) return false; // multicast
  if (first === 0x2001 && g[1] === 0x0db8) return false; // documentation
  return true;
}

/** Whether `address` is an IP address literal (IPv4 dotted, or IPv6 with or without brackets). */
export function isIpLiteral(address: string): boolean {
  return ipv4Octets(address) !== undefined || ipv6Groups(address) !== undefined;
}

/**
 * Whether `address` (an IP literal) is public unicast: not loopback, private,
 * link-local (cloud metadata), carrier-grade NAT, multicast, reserved or
 * unspecified, also when wrapped in IPv6 (mapped, NAT64, 6to4). Not an address: false.
 */
export function isPublicAddress(address: string): boolean {
  const v4 = ipv4Octets(address);
  if (v4) return isPublicIpv4(v4);
  const v6 = ipv6Groups(address);
  return v6 ? isPublicIpv6(v6) : false;
}

/** Host names that always mean this machine or a private one, whatever DNS says. */
export function isPrivateHostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost") || name.endsWith(".internal") || name.endsWith(".local");
}
