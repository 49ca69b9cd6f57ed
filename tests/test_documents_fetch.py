"""Link fetching against a local aiohttp server on 127.0.0.1.

Successful fetches need the test-only loopback switch (nothing else is reachable
offline). Refusals are proved by the server's request log: a refused hop never
reaches it. Private targets are only ever names the injected resolver maps to
documentation/private addresses, and they are refused before any connection.
"""

import gzip

import pytest

from memory.documents.addresses import AddressPolicy
from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.extract import extract_url
from memory.documents.fetch import fetch_url, parse_link, system_resolver
from memory.documents.limits import DocumentLimits
from tests.fakes.web_server import FakeWebServer, NameMap

LOOPBACK_FOR_TESTS = AddressPolicy(allow_loopback_for_tests=True)
NOVEL_PAGE = (
    "<html><head><meta charset='gbk'><title>西游记</title></head><body><nav>首页</nav>"
    "<h2>第一回　灵根育孕源流出</h2><p>诗曰：混沌未分天地乱。</p>"
    "<h2>第二回　悟彻菩提真妙理</h2><p>话表美猴王得了姓名。</p></body></html>"
).encode("gbk")


@pytest.fixture
def server():
    with FakeWebServer() as running:
        yield running


async def test_fetch_and_extract_a_page(server):
    url = server.page("/book/1.html", NOVEL_PAGE, "text/html")
    document = await extract_url(url, policy=LOOPBACK_FOR_TESTS)
    assert document.title == "西游记"
    assert [c.number for c in document.chapters] == [1, 2]
    assert "首页" not in document.text


async def test_fetch_reports_bytes_type_final_url_and_filename(server):
    server.page("/files/novel.txt", "第一章\n正文".encode("gb18030"), "text/plain; charset=GBK")
    server.redirect("/go", "/files/novel.txt", status=301)
    fetched = await fetch_url(server.base_url + "/go", policy=LOOPBACK_FOR_TESTS)
    assert fetched.url == server.base_url + "/files/novel.txt"
    assert (fetched.content_type, fetched.charset, fetched.filename) == ("text/plain", "GBK", "novel.txt")
    assert fetched.data == "第一章\n正文".encode("gb18030")
    assert [request[1] for request in server.requests] == ["/go", "/files/novel.txt"]


async def test_content_disposition_names_the_file(server):
    server.page(
        "/download", b"Chapter 1\n\nText.", "application/octet-stream",
        headers={"Content-Disposition": 'attachment; filename="../My Book.txt"'},
    )
    fetched = await fetch_url(server.base_url + "/download", policy=LOOPBACK_FOR_TESTS)
    assert fetched.filename == "My Book.txt"


async def test_gzip_responses_are_decompressed(server):
    server.page("/gz", gzip.compress(b"Hello " * 1000), "text/plain", headers={"Content-Encoding": "gzip"})
    fetched = await fetch_url(server.base_url + "/gz", policy=LOOPBACK_FOR_TESTS)
    assert fetched.data == b"Hello " * 1000
    assert server.requests[0][2]["Accept-Encoding"] == "gzip, deflate"


async def test_loopback_is_refused_by_default_before_connecting(server):
    url = server.page("/secret", "internal admin page")
    with pytest.raises(DocumentError) as error:
        await fetch_url(url)
    assert error.value.code is ErrorCode.BLOCKED_ADDRESS
    assert "loopback" in error.value.message
    assert server.requests == []


@pytest.mark.parametrize(
    "address", ["10.0.0.7", "192.168.1.20", "172.16.0.3", "169.254.169.254", "fd00::5", "::ffff:10.0.0.7", "0.0.0.0"]
)
async def test_names_resolving_to_internal_addresses_are_refused(address):
    resolver = NameMap({"intranet.example": [address]})
    with pytest.raises(DocumentError) as error:
        await fetch_url("http://intranet.example/admin", resolver=resolver, policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.BLOCKED_ADDRESS
    assert resolver.lookups == ["intranet.example"]


async def test_ip_literals_are_checked_without_resolving():
    resolver = NameMap({})
    for url in ("http://10.0.0.1/", "http://[::ffff:192.168.0.1]:8080/", "http://[fe80::1]/"):
        with pytest.raises(DocumentError) as error:
            await fetch_url(url, resolver=resolver)
        assert error.value.code is ErrorCode.BLOCKED_ADDRESS
    assert resolver.lookups == []


async def test_numeric_host_tricks_are_judged_by_what_they_resolve_to(server):
    # "2130706433" and "127.1" are not IP literals to ipaddress, but getaddrinfo reads
    # them as 127.0.0.1; whatever the resolver answers is what gets checked.
    resolver = NameMap({"2130706433": ["127.0.0.1"], "127.1": ["127.0.0.1"]})
    for host in resolver.names:
        with pytest.raises(DocumentError) as error:
            await fetch_url(f"http://{host}:{server.port}/", resolver=resolver)
        assert error.value.code is ErrorCode.BLOCKED_ADDRESS
    assert server.requests == []


async def test_system_resolver_reads_numeric_hosts_locally():
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    assert await system_resolver("::1", 80) == ["::1"]


async def test_redirect_to_a_private_address_is_refused(server):
    server.redirect("/start", "http://intranet.example/admin")
    resolver = NameMap({"intranet.example": ["192.0.2.10"]})
    with pytest.raises(DocumentError) as error:
        await fetch_url(server.base_url + "/start", resolver=resolver, policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.BLOCKED_ADDRESS
    assert resolver.lookups == ["intranet.example"]
    assert [request[1] for request in server.requests] == ["/start"]


async def test_a_name_resolving_to_loopback_is_refused_by_default(server):
    server.page("/admin", "secret")
    resolver = NameMap({"rebind.example": ["127.0.0.1"]})
    with pytest.raises(DocumentError) as error:
        await fetch_url(f"http://rebind.example:{server.port}/admin", resolver=resolver)
    assert error.value.code is ErrorCode.BLOCKED_ADDRESS
    assert server.requests == []


async def test_the_connection_goes_to_the_vetted_address(server):
    # The name is resolved once, vetted, and pinned: aiohttp connects to exactly that.
    server.page("/page", "<p>pinned</p>")
    resolver = NameMap({"books.example": ["127.0.0.1"]})
    fetched = await fetch_url(f"http://books.example:{server.port}/page", resolver=resolver, policy=LOOPBACK_FOR_TESTS)
    assert fetched.data == b"<p>pinned</p>"
    assert resolver.lookups == ["books.example"]
    assert server.requests[0][2]["Host"] == f"books.example:{server.port}"


async def test_too_many_redirects(server):
    for hop in range(10):
        server.redirect(f"/r{hop}", f"/r{hop + 1}")
    with pytest.raises(DocumentError) as error:
        await fetch_url(server.base_url + "/r0", DocumentLimits(max_redirects=3), policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.TOO_MANY_REDIRECTS
    assert len(server.requests) == 4


async def test_declared_size_over_the_limit_is_refused_before_reading(server):
    server.page("/big", b"x" * 5000, "text/plain")
    with pytest.raises(DocumentError) as error:
        await fetch_url(server.base_url + "/big", DocumentLimits(max_document_bytes=1000), policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.TOO_LARGE


async def test_streamed_body_over_the_limit_is_cut_off(server):
    server.page("/stream", b"x" * 50_000, "text/plain", chunks=10)
    with pytest.raises(DocumentError) as error:
        await fetch_url(server.base_url + "/stream", DocumentLimits(max_document_bytes=10_000), policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.TOO_LARGE


async def test_gzip_bomb_stops_at_the_limit(server):
    bomb = gzip.compress(b"\0" * (30 * 1024 * 1024))
    server.page("/bomb", bomb, "text/plain", headers={"Content-Encoding": "gzip"})
    with pytest.raises(DocumentError) as error:
        await fetch_url(server.base_url + "/bomb", DocumentLimits(max_document_bytes=1024 * 1024), policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.TOO_LARGE


async def test_unsupported_content_encoding(server):
    server.page("/br", b"\x1b\x00", "text/plain", headers={"Content-Encoding": "br"})
    with pytest.raises(DocumentError) as error:
        await fetch_url(server.base_url + "/br", policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.FETCH_FAILED


async def test_slow_servers_time_out(server):
    server.page("/slow", b"late", "text/plain", delay=5)
    with pytest.raises(DocumentError) as error:
        await fetch_url(server.base_url + "/slow", DocumentLimits(fetch_timeout_seconds=0.3), policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.TIMEOUT


async def test_http_errors(server):
    with pytest.raises(DocumentError) as error:
        await fetch_url(server.base_url + "/missing", policy=LOOPBACK_FOR_TESTS)
    assert error.value.code is ErrorCode.FETCH_FAILED
    assert "404" in error.value.message


async def test_unknown_host():
    with pytest.raises(DocumentError) as error:
        await fetch_url("http://nowhere.example/", resolver=NameMap({}))
    assert error.value.code is ErrorCode.FETCH_FAILED
    assert "nowhere.example" in error.value.message


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "example.com/page", "http://", "javascript:alert(1)", ""])
def test_only_http_links_are_accepted(url):
    with pytest.raises(DocumentError) as error:
        parse_link(url)
    assert error.value.code is ErrorCode.BAD_URL
