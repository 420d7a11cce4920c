"""mitmproxy addon for the cloak benchmark: the same work cloak does.

It swaps the bench secret's dummy for its real value in the request headers
of hosts under the bench domain, and maps every bench host name to the
loopback upstream (the bench domain does not exist in DNS).

Environment: BENCH_DUMMY, BENCH_REAL, BENCH_DOMAIN.
"""

import os
import socket

DUMMY = os.environ["BENCH_DUMMY"]
REAL = os.environ["BENCH_REAL"]
DOMAIN = os.environ["BENCH_DOMAIN"]

_getaddrinfo = socket.getaddrinfo


def _bench_getaddrinfo(host, *args, **kwargs):
    # asyncio resolves through socket.getaddrinfo (in its thread pool), so
    # names keep their place in mitmproxy's connection bookkeeping and TLS
    # server name; only the address they resolve to changes.
    if isinstance(host, bytes):
        host = host.decode()
    if host == DOMAIN or (host or "").endswith("." + DOMAIN):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _bench_getaddrinfo


def _bound(host):
    return host == DOMAIN or host.endswith("." + DOMAIN)


class Swap:
    def requestheaders(self, flow):
        if not _bound(flow.request.pretty_host):
            return
        headers = flow.request.headers
        names = {k for k, v in headers.items(multi=True) if DUMMY in v}
        for name in names:
            headers.set_all(name, [v.replace(DUMMY, REAL) for v in headers.get_all(name)])


addons = [Swap()]
