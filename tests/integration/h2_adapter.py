"""requests over HTTP/2, for running the web test suite a second time over
HTTP/2 without copying a test (conftest.py mounts it when GUST_TEST_HTTP2=1).

H2Adapter is a requests transport adapter: each request goes out through
httpx (Debian's python3-httpx, with python3-h2) speaking HTTP/2 only, by
prior knowledge on http:// URLs and by ALPN on https://; the answer comes
back as the same kind of object requests' own HTTPAdapter gives (a
requests.Response over a urllib3 HTTPResponse), so that everything above
the transport is requests' own code, unchanged: cookies into the session's
jar, redirects (Session.resolve_redirects calls send again for each hop),
allow_redirects, stream=True and iter_content, r.raw, gzip decoding.

A response that did not come over HTTP/2 raises AssertionError: a silent
fall-back to HTTP/1.1 must fail the test, not pass it.

install() patches requests.Session.__init__ so that every session mounts the
adapter, including the one module-level requests.get() makes for itself.
"""
import http.client
import io
import socket

import httpcore
import httpx
import requests
from requests.adapters import HTTPAdapter
from urllib3._collections import HTTPHeaderDict
from urllib3.response import HTTPResponse

# Connection-specific fields have no meaning in HTTP/2 and make a request
# malformed (RFC 9113 8.2.2): an HTTP/2 client drops them, as curl does.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection",
              "transfer-encoding", "upgrade"}


def _timeout(value):
    """requests' timeout (None, seconds, or (connect, read)) for httpx."""
    if isinstance(value, tuple):
        connect, read = value
        return httpx.Timeout(connect=connect, read=read, write=read,
                             pool=connect)
    if value is not None and not isinstance(value, (int, float)):
        # urllib3's Timeout object.
        return httpx.Timeout(connect=value.connect_timeout,
                             read=value.read_timeout,
                             write=value.read_timeout,
                             pool=value.connect_timeout)
    return httpx.Timeout(value)


def _exact_url(prepared_url, path_url):
    """An httpx.URL whose request target is the path requests prepared, byte
    for byte: httpx would otherwise remove dot segments and change the case
    of percent escapes, which requests sends as they are."""
    url = httpx.URL(prepared_url)
    path, sep, query = path_url.partition("?")
    ref = getattr(url, "_uri_reference", None)
    if ref is not None and hasattr(ref, "copy_with"):
        exact = httpx.URL(prepared_url)
        exact._uri_reference = ref.copy_with(path=path,
                                             query=query if sep else None)
        if exact.raw_path == path_url.encode("ascii"):
            return exact
    return url


def _latin1(value):
    return value.encode("latin-1") if isinstance(value, str) else value


def _body(body):
    """requests' prepared body (None, bytes, str, file, iterable of chunks)
    as httpx content."""
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        # As http.client sends a str body.
        return body.encode("iso-8859-1")
    if hasattr(body, "read"):
        def chunks():
            while True:
                data = body.read(65536)
                if not data:
                    return
                yield data.encode("utf-8") if isinstance(data, str) else data
        return chunks()
    return (c.encode("utf-8") if isinstance(c, str) else c for c in body)


class _NoDelayBackend(httpcore.backends.sync.SyncBackend):
    """httpcore's sockets with TCP_NODELAY, as urllib3 (so requests over
    HTTP/1), curl and browsers set it: without it each request with a body
    (HEADERS then DATA, two writes) waits out the server's delayed ACK,
    40 ms a request."""

    def connect_tcp(self, *args, **kwargs):
        stream = super().connect_tcp(*args, **kwargs)
        sock = stream.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return stream


class _Body(io.RawIOBase):
    """The response body as a file for urllib3, read from httpx's raw
    (still content-encoded) stream as the caller asks for it; closing it
    closes the stream."""

    def __init__(self, response, on_close):
        super().__init__()
        self._response = response
        self._on_close = on_close
        self._chunks = response.iter_raw()
        self._pending = b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                self.close()
                return 0
            except httpx.HTTPError as e:
                self.close()
                raise requests.exceptions.ChunkedEncodingError(e) from e
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self):
        if not self.closed:
            self._response.close()
            super().close()
            self._on_close(self)


class _Original:
    """What requests reads from urllib3's _original_response (an
    http.client.HTTPResponse over HTTP/1): the header block as a message,
    for the cookie jar, which wants every Set-Cookie field on its own."""

    def __init__(self, msg, body):
        self.msg = msg
        self._body = body

    def isclosed(self):
        return self._body.closed

    def close(self):
        self._body.close()


class H2Adapter(HTTPAdapter):
    """Sends requests over HTTP/2 with httpx; one httpx.Client (so one
    connection per origin, streams multiplexed on it) per TLS setting,
    closed with the adapter, that is with its session, or when the last
    body still being streamed is closed: requests.get(..., stream=True)
    closes its session before the caller reads the body, and over HTTP/1
    the connection lives on in the response."""

    def __init__(self):
        super().__init__()
        self._clients = {}
        self._streaming = set()
        self._closing = False

    def _client(self, verify, cert):
        key = (verify if isinstance(verify, str) else bool(verify),
               cert if not isinstance(cert, list) else tuple(cert))
        client = self._clients.get(key)
        if client is None:
            # No cookies, redirects or environment of its own: requests
            # keeps the jar and follows the redirects.
            transport = httpx.HTTPTransport(http1=False, http2=True,
                                            verify=verify, cert=cert,
                                            trust_env=False)
            pool = getattr(transport, "_pool", None)
            if hasattr(pool, "_network_backend"):
                pool._network_backend = _NoDelayBackend()
            client = httpx.Client(transport=transport, trust_env=False,
                                  follow_redirects=False)
            self._clients[key] = client
        return client

    def send(self, request, stream=False, timeout=None, verify=True,
             cert=None, proxies=None):
        client = self._client(verify, cert)
        # Bytes, as http.client sends str fields (latin-1): httpx would
        # take only ASCII.
        headers = [(_latin1(k), _latin1(v))
                   for k, v in request.headers.items()
                   if k.lower() not in HOP_BY_HOP]
        # A Host field the test set (routing by host) becomes :authority;
        # httpx.Request adds one from the URL only when there is none.
        req = httpx.Request(request.method,
                            _exact_url(request.url, request.path_url),
                            headers=headers, content=_body(request.body))
        try:
            resp = client.send(req, stream=True, auth=None,
                               follow_redirects=False)
        except httpx.ConnectTimeout as e:
            raise requests.exceptions.ConnectTimeout(e, request=request)
        except httpx.TimeoutException as e:
            raise requests.exceptions.ReadTimeout(e, request=request)
        except httpx.ConnectError as e:
            if "SSL" in str(e) or "CERTIFICATE" in str(e).upper():
                raise requests.exceptions.SSLError(e, request=request)
            raise requests.exceptions.ConnectionError(e, request=request)
        except httpx.TransportError as e:
            raise requests.exceptions.ConnectionError(e, request=request)
        client.cookies.clear()
        if resp.http_version != "HTTP/2":
            resp.close()
            raise AssertionError(
                f"{request.method} {request.url} was answered over "
                f"{resp.http_version}, not HTTP/2")

        global responses
        responses += 1
        fields = [(k.decode("latin-1"), v.decode("latin-1"))
                  for k, v in resp.headers.raw]
        headers = HTTPHeaderDict()
        msg = http.client.HTTPMessage()
        for k, v in fields:
            headers.add(k, v)
            msg[k] = v
        body = _Body(resp, self._body_closed)
        self._streaming.add(body)
        raw = HTTPResponse(body=body, headers=headers, status=resp.status_code,
                           version=20, reason=resp.reason_phrase,
                           preload_content=False, decode_content=False,
                           original_response=_Original(msg, body),
                           request_method=request.method,
                           request_url=request.url)
        response = self.build_response(request, raw)
        response.http_version = resp.http_version
        if not stream:
            # As HTTPAdapter does through urllib3's preload: the body is read
            # now, and the stream given back.
            response.content
        return response

    def _body_closed(self, body):
        self._streaming.discard(body)
        if self._closing and not self._streaming:
            self._close_clients()

    def _close_clients(self):
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def close(self):
        self._closing = True
        if not self._streaming:
            self._close_clients()
        super().close()


# Responses received over HTTP/2 so far (conftest.py reports the tests
# that sent none: those whose clients are curl, Tornado or raw sockets).
responses = 0
_installed = False


def install():
    """Makes every requests.Session created from now on send http:// and
    https:// requests through an H2Adapter."""
    global _installed
    if _installed:
        return
    original = requests.Session.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        adapter = H2Adapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    requests.Session.__init__ = init
    _installed = True
