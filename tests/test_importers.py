"""Importers: Postman collections, curl commands and OpenAPI documents → flows."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from flowrun.cli.main import cli
from flowrun.engine.run import Run
from flowrun.engine.validation import check
from flowrun.errors import FlowInvalid
from flowrun.importers import convert, load

from .modules import loaded_after
from .streams import assert_error

DATA = Path(__file__).parent / "data" / "import"


def fixture(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def imported(fmt: str, content: str, warnings=()) -> dict:
    """Convert and assert the flow is valid: no errors, and warnings only at the
    paths given."""
    flow = convert(fmt, content)
    errors, found = check(flow)
    assert errors == []
    assert [w["path"] for w in found] == list(warnings)
    return flow


def report(fmt: str, content: str) -> dict:
    """The import's report (counts and notes) as the API gives it."""
    return load(fmt, content).report.as_dict()


def by_id(flow: dict) -> dict:
    return {node["id"]: node for node in flow["nodes"]}


def refused(fmt, content, *words) -> FlowInvalid:
    """Assert the content is refused with FlowInvalid whose message has ``words``."""
    with pytest.raises(FlowInvalid) as info:
        convert(fmt, content)
    exc = info.value
    assert exc.message.startswith("Cannot import")
    assert exc.errors and all(
        {"path", "nodeId", "message", "hint"} <= set(e) for e in exc.errors
    )
    for word in words:
        assert word in exc.message
    return exc


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def postman(*items, **top) -> str:
    doc = {"info": {"name": "t", "schema": "v2.1.0"}, "item": list(items), **top}
    return json.dumps(doc)


def request(name="R", url="https://api.example.com/x", **req) -> dict:
    return {"name": name, "request": {"method": "GET", "url": url, **req}}


# -- convert() ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content", "words"),
    [
        ("har", "{}", ("unknown format 'har'",)),
        (None, "{}", ("unknown format",)),
        ("postman", "", ("content is empty",)),
        ("curl", "   \n", ("content is empty",)),
        ("openapi", None, ("content must be a string",)),
        ("curl", {"a": 1}, ("content must be a string",)),
    ],
)
def test_bad_requests_are_refused(fmt, content, words):
    exc = refused(fmt, content, *words)
    assert exc.errors[0]["path"] in ("format", "content")


def test_unknown_format_names_the_formats():
    exc = refused("har", "{}")
    assert exc.errors[0]["path"] == "format"
    assert "postman, curl, openapi" in exc.errors[0]["hint"]


# -- Postman --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop():
    return imported("postman", fixture("shop.postman_collection.json"))


def test_postman_flow_name_description_and_variables(shop):
    assert shop["name"] == "Shop API"
    assert shop["description"].startswith("Log in, browse and order.")
    # Collection variables (the disabled one dropped), then every variable the
    # requests use that the collection does not define, as "".
    assert shop["variables"] == {
        "baseUrl": "https://shop.example.com/api",
        "itemId": 42,  # written bare in a JSON body, so it is a number
        "user": "",
        "password": "",
        "page": "",
        "apiKey": "",
        "orderId": "",
        # "Upload receipt" has a file field: skipped unless this is set to true.
        "runSkipped": False,
    }


def test_postman_common_base_url_becomes_default(shop):
    assert shop["defaults"] == {"baseUrl": "{{ .vars.baseUrl }}"}
    assert [n["url"] for n in shop["nodes"]] == [
        "/login",
        "/items?limit=10&page={{ .vars.page }}",
        # A path variable's value is this request's own (Newman sends it).
        "/items/7",
        "/orders",
        "/orders/form",
        "/receipts",
        "/graphql",
        "/orders/{{ .vars.orderId }}",
    ]


def test_postman_walks_folders_in_order_with_unique_ids(shop):
    assert [(n["id"], n["name"], n["method"]) for n in shop["nodes"]] == [
        ("log-in", "Log in", "POST"),
        ("list-items", "List items", "GET"),
        ("get-item", "Get item", "GET"),
        ("create-order", "Create order", "POST"),
        ("create-order-2", "Create order", "POST"),
        ("upload-receipt", "Upload receipt", "POST"),
        ("order-graph", "Order graph", "POST"),
        ("delete-order", "Delete order", "DELETE"),
    ]


def test_postman_headers_and_auth(shop):
    nodes = by_id(shop)
    # noauth on the request overrides the collection's bearer; disabled header gone.
    assert nodes["log-in"]["headers"] == {"Content-Type": "application/json"}
    # The collection's bearer token is set by the login's test script, so it
    # becomes a reference to the login response.
    assert nodes["list-items"]["headers"] == {
        "Accept": "application/json",
        "Authorization": "Bearer {{ .responses.log-in.token }}",
    }
    # An API key on the request replaces the inherited bearer.
    assert nodes["order-graph"]["headers"]["X-Api-Key"] == "{{ .vars.apiKey }}"
    assert "Authorization" not in nodes["order-graph"]["headers"]


def test_postman_raw_json_body_is_parsed_with_placeholders(shop):
    nodes = by_id(shop)
    assert nodes["log-in"]["body"] == {
        "username": "{{ .vars.user }}",
        "password": "{{ .vars.password }}",
    }
    assert nodes["create-order"]["body"] == {
        "itemId": "{{ .vars.itemId }}",
        "quantity": 2,
        "ref": "{{ $guid }}",
    }


def test_postman_urlencoded_formdata_and_graphql_bodies(shop):
    nodes = by_id(shop)
    form = nodes["create-order-2"]
    assert form["body"] == {"itemId": "{{ .vars.itemId }}"}
    assert form["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    # Multipart as Postman sends it; the file cannot be, so the node is skipped
    # by default.
    upload = nodes["upload-receipt"]
    content_type = upload["headers"]["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=flowrun-")
    boundary = content_type.split("boundary=")[1]
    assert upload["body"] == (
        f'--{boundary}\r\nContent-Disposition: form-data; name="orderId"\r\n\r\n1'
        f"\r\n--{boundary}--\r\n"
    )
    assert "File field(s) 'file' cannot be sent" in upload["description"]
    assert upload["conditions"] == [
        {
            "variable": "runSkipped",
            "equals": True,
            "_why": "skipped by default: its form has a file field",
        }
    ]
    graph = nodes["order-graph"]
    assert graph["body"] == {
        "query": "query Order($id: ID!) { order(id: $id) { id total } }",
        "variables": {"id": "{{ .vars.orderId }}"},
    }
    assert graph["headers"]["Content-Type"] == "application/json"


def test_postman_status_tests_become_validations(shop):
    nodes = by_id(shop)
    assert nodes["log-in"]["validations"] == [{"httpStatusCode": 200}]
    assert nodes["list-items"]["validations"] == [
        {"httpStatusCode": 200},
        {"jsonpath": ". | length", "greaterThan": 0},
    ]
    assert nodes["create-order"]["validations"] == [{"httpStatusCode": 201}]
    assert nodes["delete-order"]["validations"] == [{"httpStatusCode": [200, 204]}]
    assert "validations" not in nodes["get-item"]
    # What the scripts did besides status checks is named, not silently lost.
    assert nodes["log-in"]["description"] == (
        "The test script sets 'authToken'; later requests use the response "
        "value it holds (.responses.log-in.token) instead."
    )
    assert "description" not in nodes["list-items"]
    assert "description" not in nodes["create-order"]


@pytest.mark.parametrize(
    ("line", "validations"),
    [
        ("pm.expect(pm.response).to.have.status(202);", [{"httpStatusCode": 202}]),
        (
            'pm.expect(pm.response.json().user.name).to.eql("ada");',
            [{"jsonpath": ".user.name", "equals": "ada"}],
        ),
        (
            "pm.test('id', () => pm.expect(pm.response.json().id).to.equal(7));",
            [{"jsonpath": ".id", "equals": 7}],
        ),
        (
            "pm.expect(pm.response.json()['a-b'][0]).to.not.eql('x')",
            [{"jsonpath": '.["a-b"][0]', "notEquals": "x"}],
        ),
        (
            "pm.expect(pm.response.json().items).to.have.lengthOf(3);",
            [{"jsonpath": ".items | length", "equals": 3}],
        ),
        (
            "pm.expect(pm.response.json().items.length).to.be.at.least(1);",
            [{"jsonpath": ".items | length", "greaterThanOrEqual": 1}],
        ),
        (
            "pm.expect(pm.response.json().n).to.be.below(10)",
            [{"jsonpath": ".n", "lessThan": 10}],
        ),
        (
            "pm.expect(pm.response.json().token).to.exist;",
            [{"jsonpath": ".token", "exists": True}],
        ),
        (
            "pm.expect(pm.response.json().error).to.be.undefined;",
            [{"jsonpath": ".error", "exists": False}],
        ),
        (
            "pm.expect(pm.response.json().ok).to.be.true;",
            [{"jsonpath": ".ok", "equals": "true"}],
        ),
        (
            'pm.expect(pm.response.json().msg).to.include("done");',
            [{"jsonpath": ".msg", "contains": "done"}],
        ),
        (
            "pm.expect(pm.response.json().email).to.match(/@example\\.com$/i);",
            [{"jsonpath": ".email", "matches": "(?i)@example\\.com$"}],
        ),
        (
            "pm.expect(pm.response.headers.get('Content-Type')).to.include('json');",
            [{"header": "Content-Type", "contains": "json"}],
        ),
        (
            "pm.response.to.have.header('X-Id');",
            [{"header": "X-Id", "exists": True}],
        ),
        (
            'pm.response.to.have.header("X-Kind", "a");',
            [{"header": "X-Kind", "equals": "a"}],
        ),
        (
            "pm.expect(pm.response.responseTime).to.be.below(500);",
            [{"maxDurationMs": 500}],
        ),
        (
            'pm.response.to.have.jsonBody("data.id");',
            [{"jsonpath": ".data.id", "exists": True}],
        ),
    ],
)
def test_postman_script_assertions_become_validations(line, validations):
    item = request()
    item["event"] = [{"listen": "test", "script": {"exec": [line]}}]
    node = imported("postman", postman(item))["nodes"][0]
    assert node["validations"] == validations
    assert "description" not in node


@pytest.mark.parametrize(
    "line",
    [
        "pm.expect(pm.response.json().a).to.eql(pm.environment.get('x'));",
        "pm.expect(pm.response.json().a).to.deep.include({b: 1});",
        "pm.expect(pm.response.json().a).to.be.above('x');",
        "pm.expect(pm.response.json().a).to.be.an('array');",
        "pm.expect(pm.response.json().a).to.eql(1).and.be.ok;",
        "pm.expect(someOther.a).to.eql(1);",
        "pm.expect(pm.response.responseTime).to.be.above(5);",
        "pm.expect(pm.response.json().a.length).to.not.be.above(5);",
        "console.log(pm.response.text());",
    ],
)
def test_postman_script_lines_flowrun_cannot_say_are_counted(line):
    item = request()
    item["event"] = [{"listen": "test", "script": {"exec": [line]}}]
    node = imported("postman", postman(item))["nodes"][0]
    assert "validations" not in node
    assert "1 line(s) not translated" in node["description"]


def test_postman_v2_0_collection():
    flow = imported("postman", fixture("legacy-v2.0.postman_collection.json"))
    status, echo = flow["nodes"]
    # A request given as a bare URL string; basic auth in v2.0's object form.
    assert status == {
        "id": "status",
        "name": "Status",
        "method": "GET",
        "url": "https://status.example.com/health",
        "headers": {"Authorization": basic("ada:s3cret")},
    }
    # Headers as "Name: value" lines; lower-case method; a plain text body.
    assert echo["method"] == "POST"
    assert echo["headers"] == {
        "Content-Type": "text/plain",
        "X-Trace": "abc",
        "Authorization": basic("ada:s3cret"),
    }
    assert echo["body"] == "hello"
    # Two hosts: no common base URL.
    assert "defaults" not in flow


def test_postman_url_from_parts_without_raw():
    url = {
        "protocol": "https",
        "host": ["api", "example", "com"],
        "port": "8443",
        "path": ["v1", "users"],
        "query": [
            {"key": "q", "value": "{{term}}"},
            {"key": "off", "value": "1", "disabled": True},
        ],
    }
    flow = imported("postman", postman(request(url=url)))
    assert flow["defaults"]["baseUrl"] == "https://api.example.com:8443"
    assert flow["nodes"][0]["url"] == "/v1/users?q={{ .vars.term }}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{{$guid}}", "{{ $guid }}"),
        ("{{$randomUUID}}", "{{ $guid }}"),
        ("{{$timestamp}}", "{{ $timestamp }}"),
        ("{{$isoTimestamp}}", "{{ $isoTimestamp }}"),
        ("{{$randomInt}}", "{{ $randomInt }}"),
        ("{{ spaced }}", "{{ .vars.spaced }}"),
        ("{{my var.x}}", "{{ .vars.my_var_x }}"),
    ],
)
def test_postman_placeholders(raw, expected):
    item = request(header=[{"key": "X", "value": raw}])
    flow = imported("postman", postman(item))
    assert flow["nodes"][0]["headers"]["X"] == expected


def test_postman_unknown_dynamic_variable_becomes_a_variable():
    flow = imported(
        "postman", postman(request(url="https://a.example/{{$randomEmail}}"))
    )
    assert flow["nodes"][0]["url"] == "/{{ .vars.randomEmail }}"
    assert flow["variables"] == {"randomEmail": ""}
    assert (
        "dynamic variable $randomEmail has no flowrun equivalent"
        in (flow["nodes"][0]["description"])
    )


def test_postman_json_body_with_comments_and_trailing_comma():
    body = {
        "mode": "raw",
        "raw": '{\n  // who\n  "id": {{id}},\n  "tags": ["a", "b",],\n}',
        "options": {"raw": {"language": "json"}},
    }
    flow = imported("postman", postman(request(body=body, method="POST")))
    node = flow["nodes"][0]
    assert node["body"] == {"id": "{{ .vars.id }}", "tags": ["a", "b"]}
    assert node["headers"] == {"Content-Type": "application/json"}


def test_postman_body_marked_json_that_is_not_is_sent_as_written():
    # Postman sends the text with the JSON Content-Type the language implies.
    body = {"mode": "raw", "raw": "not json", "options": {"raw": {"language": "json"}}}
    content = postman(request(body=body, method="POST"))
    node = imported("postman", content, ["nodes[0].body"])["nodes"][0]
    assert node["body"] == "not json"
    assert node["bodyFormat"] == "text"
    assert node["headers"] == {"Content-Type": "application/json"}
    assert "not valid JSON: it is sent as written" in node["description"]


def test_postman_raw_json_text_without_json_content_type_stays_a_string():
    body = {"mode": "raw", "raw": '{"a": 1}', "options": {"raw": {"language": "text"}}}
    node = imported("postman", postman(request(body=body, method="POST")))["nodes"][0]
    assert node["body"] == '{"a": 1}'
    assert node["headers"] == {"Content-Type": "text/plain"}


def test_postman_auth_inherits_through_folders_and_bearer_wins_over_nothing():
    folder = {
        "name": "F",
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "abc"}]},
        "item": [
            request("A"),
            request("B", auth={"type": "inherit"}),
            request("C", auth={"type": "noauth"}),
            request("D", header=[{"key": "authorization", "value": "Mine"}]),
        ],
    }
    nodes = imported("postman", postman(folder, request("E")))["nodes"]
    assert [n.get("headers") for n in nodes] == [
        {"Authorization": "Bearer abc"},
        {"Authorization": "Bearer abc"},
        None,
        {"authorization": "Mine"},
        None,
    ]


def test_postman_api_key_in_query_and_unsupported_auth():
    key = {
        "type": "apikey",
        "apikey": [
            {"key": "key", "value": "api_key"},
            {"key": "value", "value": "{{k}}"},
            {"key": "in", "value": "query"},
        ],
    }
    items = [
        request("A", url="https://a.example/x?y=1", auth=key),
        request("B", auth={"type": "digest", "digest": []}),
    ]
    flow = imported("postman", postman(*items))
    assert flow["nodes"][0]["url"] == "https://a.example/x?y=1&api_key={{ .vars.k }}"
    assert "headers" not in flow["nodes"][1]
    assert "Auth 'digest' cannot be reproduced" in flow["nodes"][1]["description"]


def test_postman_collection_test_scripts_apply_to_every_request():
    event = {"listen": "test", "script": {"exec": ["pm.response.to.be.ok;"]}}
    flow = imported("postman", postman(request("A"), request("B"), event=[event]))
    assert [n["validations"] for n in flow["nodes"]] == [[{"httpStatusCode": 200}]] * 2


@pytest.mark.parametrize(
    ("script", "reference"),
    [
        (['pm.environment.set("t", pm.response.json().data.token);'], ".data.token"),
        (
            ["pm.collectionVariables.set('t', pm.response.json()['a-b'][0]);"],
            '["a-b"][0]',
        ),
        (["var body = pm.response.json();", "pm.globals.set('t', body.id)"], ".id"),
        (
            [
                "const d = JSON.parse(responseBody);",
                'postman.setEnvironmentVariable("t", d.x);',
            ],
            ".x",
        ),
        (["pm.variables.set('t', pm.response.json())"], ""),
    ],
)
def test_postman_values_saved_by_scripts_become_response_references(script, reference):
    first = request("Login")
    first["event"] = [{"listen": "test", "script": {"exec": script}}]
    second = request("Me", url="https://api.example.com/me?t={{t}}")
    flow = imported("postman", postman(first, second))
    login, me = flow["nodes"]
    assert me["url"] == "/me?t={{ .responses.login" + reference + " }}"
    assert "t" not in flow["variables"]
    assert "not translated" not in login["description"]


def test_postman_scripts_saving_headers_and_status():
    first = request("Login")
    exec_ = [
        "pm.environment.set('sid', pm.response.headers.get('X-Session'));",
        "pm.environment.set('code', pm.response.code);",
        "pm.environment.set('other', someFunction());",
    ]
    first["event"] = [{"listen": "test", "script": {"exec": exec_}}]
    second = request("Me", header=[{"key": "X", "value": "{{sid}} {{code}} {{other}}"}])
    flow = imported("postman", postman(first, second))
    assert flow["nodes"][1]["headers"]["X"] == (
        "{{ .headers.login.X-Session }} {{ .status.login }} {{ .vars.other }}"
    )
    assert "1 line(s) not translated" in flow["nodes"][0]["description"]


def test_postman_pre_request_scripts_are_named_as_ignored():
    item = request()
    item["event"] = [{"listen": "prerequest", "script": {"exec": ["pm.x();"]}}]
    node = imported("postman", postman(item))["nodes"][0]
    assert "Pre-request script ignored" in node["description"]


def test_postman_what_flowrun_cannot_send_is_skipped_or_left_out_with_a_note():
    items = [
        request("A"),
        request("Link", method="LINK"),
        request("No URL", url=""),
        {"name": "F", "item": [request("No host", url={"path": ["x"]})]},
    ]
    content = postman(*items)
    flow = imported("postman", content)
    # A method flowrun does not send: a node skipped by default.
    assert [(n["name"], n["method"]) for n in flow["nodes"]] == [
        ("A", "GET"),
        ("Link", "GET"),
    ]
    assert flow["nodes"][1]["conditions"][0]["variable"] == "runSkipped"
    assert flow["variables"] == {"runSkipped": False}
    found = report("postman", content)
    assert {k: v for k, v in found.items() if k != "notes"} == {
        "requests": 4,
        "asIs": 1,
        "withNotes": 0,
        "skipped": 1,
        "leftOut": 2,
    }
    assert [(n["where"], n["message"]) for n in found["notes"]] == [
        ("Link", "skipped by default: method LINK is not one flowrun sends"),
        (
            "Link",
            "Method LINK: flowrun sends GET, POST, PUT, PATCH, DELETE, HEAD, "
            "OPTIONS, so this node is a GET, skipped by default.",
        ),
        ("No URL", "left out: it has no URL with a host"),
        ("F / No host", "left out: it has no URL with a host"),
    ]


def test_postman_url_without_scheme_gets_http_and_unwraps_api_export():
    doc = json.loads(postman(request(url="api.example.com/ping")))
    flow = imported("postman", json.dumps({"collection": doc}))
    assert flow["defaults"]["baseUrl"] == "http://api.example.com"


def test_postman_base_url_with_a_placeholder_host():
    items = [
        request("A", url="https://{{host}}:8443/a"),
        request("B", url="https://{{host}}:8443"),
    ]
    flow = imported(
        "postman", postman(*items, variable=[{"key": "host", "value": None}])
    )
    assert flow["defaults"] == {"baseUrl": "https://{{ .vars.host }}:8443"}
    assert [n["url"] for n in flow["nodes"]] == ["/a", "/"]
    assert flow["variables"] == {"host": ""}


def test_postman_no_base_url_when_one_request_differs():
    items = [request("A", url="{{base}}/a"), request("B", url="{{other}}/b")]
    flow = imported("postman", postman(*items))
    assert "defaults" not in flow
    assert flow["nodes"][0]["url"] == "{{ .vars.base }}/a"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ("not valid JSON", "line 1")),
        ("[1, 2]", ("must be a JSON object",)),
        ('{"info": {}, "requests": []}', ("v1 is not supported",)),
        ('{"name": "x"}', ("not a Postman collection",)),
        ('{"info": {}, "item": {}}', ("item must be an array",)),
        ('{"info": {}, "item": [3]}', ("not a folder or request",)),
        ('{"info": {}, "item": [{"name": "x"}]}', ("neither a folder",)),
        ('{"info": {}, "item": []}', ("nothing to import: no request found",)),
        (
            '{"info": {}, "item": [{"item": [{"request": 5}]}]}',
            ("its request is not an object",),
        ),
        ("[" * 100_000, ("not valid JSON",)),
    ],
)
def test_postman_bad_input(content, words):
    refused("postman", content, *words)


def test_postman_deeply_nested_folders_are_refused_cleanly():
    inner = '{"name": "r", "request": {"url": "https://a.example/"}}'
    nested = '{"name": "f", "item": [' * 900 + inner + "]}" * 900
    refused("postman", '{"info": {}, "item": [' + nested + "]}")


def test_postman_body_that_is_not_json_under_a_json_type_is_sent_as_written():
    # As Postman does: one such body used to refuse the whole collection.
    body = {"mode": "raw", "raw": '{"profile": <profileId>}'}
    item = request(
        "Create",
        body=body,
        method="POST",
        header=[{"key": "Content-Type", "value": "application/json"}],
    )
    flow = imported("postman", postman(request("Other"), item), ["nodes[1].body"])
    node = flow["nodes"][1]
    assert node["body"] == '{"profile": <profileId>}'
    assert node["bodyFormat"] == "text"
    assert "not valid JSON" in node["description"]


# -- curl -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def commands():
    return imported("curl", fixture("commands.curl.sh"))


def test_curl_one_node_per_command_with_common_base(commands):
    assert commands["defaults"] == {"baseUrl": "https://shop.example.com"}
    assert [(n["id"], n["method"], n["url"]) for n in commands["nodes"]] == [
        ("post-api-login", "POST", "/api/login"),
        ("get-api-items", "GET", "/api/items?limit=10"),
        ("get-api-me", "GET", "/api/me"),
        ("get-api-search", "GET", "/api/search?q=lamp&max=5&label=red%20lamp"),
        ("post-api-form", "POST", "/api/form"),
        ("post-api-orders", "POST", "/api/orders"),
        ("head-api-health", "HEAD", "/api/health"),
        ("delete-api-orders-1", "DELETE", "/api/orders/1"),
    ]
    assert commands["nodes"][0]["name"] == "POST /api/login"


def test_curl_headers_and_json_body(commands):
    login = commands["nodes"][0]
    assert login["headers"] == {
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert login["body"] == {"username": "ada", "password": "s3cret"}
    assert commands["nodes"][1]["headers"] == {"Authorization": "Bearer abc"}


def test_curl_user_cookie_agent_referer(commands):
    assert commands["nodes"][2]["headers"] == {
        "Authorization": basic("ada:s3cret"),
        "User-Agent": "flowrun-test",
        "Referer": "https://shop.example.com/",
        "Cookie": "session=1; theme=dark",
    }


def test_curl_form_data_is_joined_and_timeout_kept(commands):
    form = commands["nodes"][4]
    assert form["body"] == "a=1&b=2"
    assert form["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    assert form["timeout"] == 5


def test_curl_json_option_spanning_lines(commands):
    orders = commands["nodes"][5]
    assert orders["body"] == {"itemId": 42, "quantity": 2}
    assert orders["headers"] == {
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


@pytest.mark.parametrize(
    ("command", "method", "url", "extra"),
    [
        ("curl https://a.example/x", "GET", "/x", {}),
        ("curl -XPUT https://a.example/x", "PUT", "/x", {}),
        ("curl --request patch https://a.example/x", "PATCH", "/x", {}),
        ("curl -X OPTIONS https://a.example/x", "OPTIONS", "/x", {}),
        ("curl --head https://a.example/x", "HEAD", "/x", {}),
        ("curl -sSLk https://a.example/x -o out.txt", "GET", "/x", {}),
        ("curl -vsXPOST https://a.example/x", "POST", "/x", {}),
        (
            "curl -G --data-urlencode 'q=a&b' https://a.example/x?y=1",
            "GET",
            "/x?y=1&q=a%26b",
            {},
        ),
        (
            "curl -X PUT -d x=1 https://a.example/x",
            "PUT",
            "/x",
            {
                "body": "x=1",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        (
            "curl --data-binary 'raw body' -H 'Content-Type: text/plain' a.example/x",
            "POST",
            "/x",
            {"body": "raw body", "headers": {"Content-Type": "text/plain"}},
        ),
        (
            "curl --data-urlencode 'msg=hello world' --data-urlencode =x/y "
            "https://a.example/x",
            "POST",
            "/x",
            {
                "body": "msg=hello%20world&x%2Fy",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        (
            "curl --data-raw '@literal' https://a.example/x",
            "POST",
            "/x",
            {
                "body": "@literal",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        (
            "curl -H 'X-Empty;' -H 'Accept: a' -H 'accept:' -u ada https://a.example/x",
            "GET",
            "/x",
            {"headers": {"X-Empty": "", "Authorization": basic("ada:")}},
        ),
        (
            "curl --oauth2-bearer t0k https://a.example/x",
            "GET",
            "/x",
            {"headers": {"Authorization": "Bearer t0k"}},
        ),
        (
            "curl --url-query 'q=a b' --url-query +raw=%20 https://a.example/x",
            "GET",
            "/x?q=a%20b&raw=%20",
            {},
        ),
        (
            "curl -G --data-urlencode 'q=a&b' https://a.example/s",
            "GET",
            "/s?q=a%26b",
            {},
        ),
    ],
)
def test_curl_options(command, method, url, extra):
    [node] = imported("curl", command)["nodes"]
    assert node["method"] == method
    assert node["url"] == url
    for key, value in extra.items():
        assert node[key] == value
    assert set(node) - {"id", "name", "method", "url", "description"} == set(extra)


def test_curl_repeated_data_is_joined_even_where_that_breaks_json():
    # curl sends "[1,&2]": so does the flow, as text, with a note.
    command = "curl -H 'content-type: application/json' -d '[1,' -d '2]' a.example/x"
    [node] = imported("curl", command, ["nodes[0].body"])["nodes"]
    assert node["body"] == "[1,&2]"
    assert node["bodyFormat"] == "text"
    assert "sent as written" in node["description"]


def test_curl_json_data_without_content_type_is_sent_as_json():
    [node] = imported("curl", """curl https://a.example/x -d '{"a": 1}'""")["nodes"]
    assert node["body"] == {"a": 1}
    assert node["headers"] == {"Content-Type": "application/json"}
    assert "form Content-Type" in node["description"]


def test_curl_splitting_continuations_quotes_comments_and_prompts():
    text = (
        "# a comment line\n"
        "$ curl https://a.example/one \\\n"
        "    -H 'X-A: 1'   # trailing comment\n"
        "\n"
        "curl https://a.example/two -d 'line one\n"
        "line two # not a comment'\r\n"
        "curl https://a.example/three#frag\n"
    )
    nodes = imported("curl", text)["nodes"]
    assert [n["url"] for n in nodes] == ["/one", "/two", "/three#frag"]
    assert nodes[0]["headers"] == {"X-A": "1"}
    assert nodes[1]["body"] == "line one\nline two # not a comment"


def test_curl_ansi_c_quoted_data_from_browsers():
    # As Chrome's "Copy as cURL (bash)" writes a body with a quote, an escaped
    # newline and non-ASCII text.
    text = r"""curl 'https://a.example/x' \
  -H 'content-type: application/json' \
  --data-raw $'{"note":"it\'s\\nfine \u00e9\x41"}'
curl https://a.example/y
"""
    nodes = imported("curl", text)["nodes"]
    assert nodes[0]["body"] == {"note": "it's\nfine éA"}
    assert nodes[1]["url"] == "/y"
    refused("curl", "curl https://a.example/ -d $'open", "not closed")


def test_curl_without_scheme_and_hosts_that_differ():
    flow = imported("curl", "curl a.example/x\ncurl https://b.example/y")
    assert "defaults" not in flow
    assert [n["url"] for n in flow["nodes"]] == [
        "http://a.example/x",
        "https://b.example/y",
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("wget https://a.example/", ("no curl command found",)),
        ("# only a comment\n", ("no curl command found",)),
        ("curl -X POST", ("nothing to import", "has no URL")),
        ("curl 'https://a.example/", ("nothing to import", "' quote is not closed")),
        ("curl /path/only", ("nothing to import", "has no host")),
        ("curl ftp://a.example/f", ("nothing to import", "ftp URL")),
        ("curl --help", ("nothing to import", "prints curl's help")),
    ],
)
def test_curl_bad_input(content, words):
    refused("curl", content, *words)


@pytest.mark.parametrize(
    ("command", "words", "skipped"),
    [
        ("curl --frobnicate https://a.example/", "Unknown curl option --frobnicate", 0),
        ("curl https://a.example/ -H", "-H has no value", 0),
        ("curl -d @body.json https://a.example/", "the file body.json", 1),
        ("curl --data-urlencode n@f.txt https://a.example/", "the file f.txt", 1),
        ("curl -b cookies.txt https://a.example/", "Cookies from the file", 0),
        ("curl -T up.bin https://a.example/", "uploads the file up.bin", 1),
        ("curl -X BREW https://a.example/", "Method BREW", 1),
        ("curl -H NoColon https://a.example/", "has no ':'", 0),
        ("curl -F novalue https://a.example/", "has no '='", 0),
        ("curl -F photo=@rex.png https://a.example/", "the file rex.png", 1),
        ("curl -m soon https://a.example/", "is not a number", 0),
        ("curl -k https://a.example/", "run the flow with --insecure", 0),
        ("curl --digest -u a:b https://a.example/", "Digest", 0),
        ("curl -x proxy:3128 https://a.example/", "proxy is not used", 0),
        ("curl -K opts.txt https://a.example/", "config file", 0),
    ],
)
def test_curl_what_cannot_be_carried_over_is_noted_not_refused(command, words, skipped):
    result = load("curl", command)
    [node] = result.flow["nodes"]
    assert words in node["description"]
    assert result.report.skipped == skipped
    assert ("conditions" in node) == bool(skipped)


def test_curl_shell_variables_become_declared_flow_variables():
    text = (
        "export REGION=eu\n"
        'curl "https://api.example.com/$REGION/v1/${ACCOUNT:-acme}/calls" \\\n'
        '  -H "X-Api-Key: $API_KEY" \\\n'
        "  -u \"$SID:$TOKEN\" -d 'to=+1555'\n"
    )
    flow = imported("curl", text)
    [node] = flow["nodes"]
    assert flow["variables"] == {
        "basicAuth": "",
        "API_KEY": "",
        "REGION": "eu",
        "ACCOUNT": "acme",
    }
    assert flow["defaults"]["baseUrl"] == "https://api.example.com"
    assert node["url"] == "/{{ .vars.REGION }}/v1/{{ .vars.ACCOUNT }}/calls"
    # Never the variable's name as literal text, never base64 of it.
    assert node["headers"] == {
        "X-Api-Key": "{{ .vars.API_KEY }}",
        "Authorization": "Basic {{ .vars.basicAuth }}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    description = node["description"]
    assert "Shell variable $API_KEY became the variable 'API_KEY'" in description
    assert "'basicAuth' to the base64 encoding" in description


@pytest.mark.parametrize(
    ("text", "url", "headers"),
    [
        # Windows cmd, as a browser's "Copy as cURL (cmd)" writes it.
        (
            'curl ^"https://a.example/x?a=1^&b=2^" ^\n'
            '  -H ^"sec-ch-ua: ^\\^"Brand^\\^";v=^\\^"9^\\^"^" ^\n'
            '  -H "Authorization: Bearer %TOKEN%"',
            "https://a.example/x?a=1&b=2",
            {
                "sec-ch-ua": '"Brand";v="9"',
                "Authorization": "Bearer {{ .vars.TOKEN }}",
            },
        ),
        # PowerShell: backtick continuations, $env: variables.
        (
            'curl.exe -X GET `\n  -H "X-Key: $env:KEY" `\n  https://a.example/x',
            "https://a.example/x",
            {"X-Key": "{{ .vars.KEY }}"},
        ),
    ],
)
def test_curl_windows_command_lines(text, url, headers):
    flow = imported("curl", text)
    [node] = flow["nodes"]
    assert flow["defaults"]["baseUrl"] + node["url"] == url
    assert node["headers"] == headers


def test_curl_pipes_redirections_and_data_piped_in():
    text = (
        "echo '{\"a\": 1}' | curl --json @- https://a.example/in | jq .\n"
        "curl https://a.example/out > out.json 2>&1\n"
        "curl -d @- https://a.example/doc <<'EOF'\n"
        "name=ada\n"
        "EOF\n"
    )
    flow = imported("curl", text)
    piped, redirected, heredoc = flow["nodes"]
    assert (piped["method"], piped["body"]) == ("POST", {"a": 1})
    assert "| jq ." in piped["description"]
    assert "The data piped to curl is the body." in piped["description"]
    assert redirected["method"] == "GET"
    assert "> out.json" in redirected["description"]
    assert heredoc["body"] == "name=ada"


def test_curl_multipart_form_is_sent_as_curl_sends_it():
    command = (
        "curl -H 'Content-Type: multipart/form-data' -F name=Rex "
        "-F 'note=\"hi\";type=text/plain' https://a.example/pets"
    )
    [node] = imported("curl", command)["nodes"]
    assert node["method"] == "POST"
    content_type = node["headers"]["Content-Type"]
    # The type given by hand is kept, with the boundary added as curl does.
    assert content_type.startswith("multipart/form-data; boundary=flowrun-")
    boundary = content_type.split("boundary=")[1]
    assert node["body"] == (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nRex\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n'
        f"--{boundary}--\r\n"
    )


def test_curl_empty_data_with_a_json_type_posts_nothing():
    command = "curl -H 'Content-Type: application/json' -d '' https://a.example/x"
    [node] = imported("curl", command)["nodes"]
    assert node["method"] == "POST"
    assert "body" not in node


def test_curl_several_urls_globs_and_next_are_one_node_each():
    text = (
        "curl https://a.example/one https://a.example/two\n"
        "curl 'https://a.example/{x,y}/[1-2]'\n"
        "curl -d a=1 https://a.example/post --next https://a.example/get\n"
    )
    flow = imported("curl", text)
    assert [(n["method"], n["url"]) for n in flow["nodes"]] == [
        ("GET", "/one"),
        ("GET", "/two"),
        ("GET", "/x/1"),
        ("GET", "/x/2"),
        ("GET", "/y/1"),
        ("GET", "/y/2"),
        ("POST", "/post"),
        ("GET", "/get"),
    ]


def test_curl_a_line_of_options_after_a_command_belongs_to_it():
    # API docs often lose a continuation backslash.
    text = "curl https://a.example/files \\\n  -F purpose=x\n  -F name=y\n"
    [node] = imported("curl", text)["nodes"]
    assert 'name="name"' in node["body"]
    assert "Line(s) 3 start with an option" in node["description"]


def test_curl_literal_braces_and_curl_variables():
    text = (
        "curl -d '{\"t\": \"Hi {{ name }}\"}' -H 'Content-Type: application/json' "
        "https://a.example/t\n"
        "curl --variable host=a.example --expand-url 'https://{{host}}/v' \n"
    )
    flow = imported("curl", text)
    # curl sends {{ name }} as it is: escaped, so flowrun does too.
    assert flow["nodes"][0]["body"] == {"t": "Hi \\{{ name }}"}
    assert flow["nodes"][1]["url"] == "/v"
    assert flow["defaults"]["baseUrl"] == "https://a.example"


def test_curl_end_to_end_against_the_target(target):
    command = (
        f"curl -X POST {target.url}/demo/echo?from=curl \\\n"
        "  -H 'Content-Type: application/json' -H 'X-Trace: t1' \\\n"
        "  -d '{\"a\": 1}'\n"
        f"curl -u ada:secret {target.url}/demo/echo"
    )
    flow = imported("curl", command)
    events = [(e.name, e.to_dict()) for e in Run(flow).events()]
    steps = [data for name, data in events if name == "step"]
    assert [s["status"] for s in steps] == ["completed", "completed"], steps
    echo = steps[0]["response"]["body"]
    assert echo["method"] == "POST"
    assert echo["json"] == {"a": 1}
    assert echo["args"] == {"from": ["curl"]}
    assert echo["headers"]["X-Trace"] == "t1"
    assert steps[1]["response"]["body"]["headers"]["Authorization"] == basic(
        "ada:secret"
    )
    assert events[-1][0] == "end" and events[-1][1]["success"] is True


def test_postman_end_to_end_against_the_target(target):
    items = [
        {
            "name": "Log in",
            "request": {
                "method": "POST",
                "header": [{"key": "Content-Type", "value": "application/json"}],
                "body": {
                    "mode": "raw",
                    "raw": '{"username": "{{user}}", "password": "secret"}',
                },
                "url": "{{baseUrl}}/login",
            },
            "event": [
                {
                    "listen": "test",
                    "script": {
                        "exec": [
                            "pm.response.to.have.status(200);",
                            "pm.environment.set('token', pm.response.json().token);",
                        ]
                    },
                }
            ],
        },
        {
            "name": "Me",
            "request": {
                "method": "GET",
                "auth": {
                    "type": "bearer",
                    "bearer": [{"key": "token", "value": "{{token}}"}],
                },
                "url": "{{baseUrl}}/me",
            },
        },
        {
            "name": "Form",
            "request": {
                "method": "POST",
                "body": {
                    "mode": "urlencoded",
                    "urlencoded": [{"key": "n", "value": "1"}],
                },
                "url": "{{baseUrl}}/echo",
            },
        },
    ]
    variable = [
        {"key": "baseUrl", "value": target.url + "/demo"},
        {"key": "user", "value": "ada"},
    ]
    flow = imported("postman", postman(*items, variable=variable))
    events = [(e.name, e.to_dict()) for e in Run(flow).events()]
    steps = [data for name, data in events if name == "step"]
    assert [s["status"] for s in steps] == ["completed"] * 3, steps
    assert steps[0]["response"]["body"]["user"]["username"] == "ada"
    # The token the login's script saved reached /me through the response.
    assert steps[1]["request"]["headers"]["Authorization"].startswith("Bearer tok-")
    assert steps[1]["response"]["status"] == 200
    assert steps[2]["response"]["body"]["form"] == {"n": ["1"]}


# -- over HTTP and the CLI -------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("postman", "shop.postman_collection.json"),
        ("curl", "commands.curl.sh"),
        ("openapi", "petstore.openapi.yaml"),
        ("openapi", "petstore.swagger.json"),
    ],
)
def test_api_import_returns_the_flow_and_its_report(client, fmt, name):
    resp = client.post("/api/import", json={"format": fmt, "content": fixture(name)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    answer = resp.get_json()
    # The flow stays the answer itself (where Studio reads it); the report is
    # one more field beside it.
    found = answer.pop("importReport")
    assert answer == convert(fmt, fixture(name))
    assert found == report(fmt, fixture(name))
    assert found["requests"] == len(answer["nodes"]) + found["leftOut"]


def test_api_import_of_bad_content_is_a_located_400(client):
    resp = client.post("/api/import", json={"format": "curl", "content": "wget x"})
    body = assert_error(resp, 400, "Cannot import curl commands")
    assert body["errors"][0]["path"] == "content"
    assert "no curl command found" in body["errors"][0]["message"]


def test_the_server_loads_the_importers_on_the_first_import_only(tmp_path):
    # They and YAML take ~0.2 s and a few MiB in each worker that loads them.
    config = {
        "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
        "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
        "FLOWRUN_TOKEN": None,
    }
    serve = (
        "from flowrun import create_app\n"
        f"client = create_app({config!r}).test_client()\n"
        "for path in ('/', '/api/health', '/api/executions', '/api/schema'):\n"
        "    assert client.get(path).status_code == 200, path\n"
    )
    assert loaded_after(serve, "flowrun.importers", "yaml") == []
    imported = serve + (
        "answer = client.post('/api/import', json={'format': 'curl', "
        "'content': 'curl https://api.example.com/items'})\n"
        "assert answer.status_code == 200, answer.get_data(as_text=True)\n"
    )
    assert "flowrun.importers.curl" in loaded_after(imported, "flowrun.importers")


def test_cli_import_openapi_yaml(runner, tmp_path):
    out = tmp_path / "petstore.json"
    source = str(DATA / "petstore.openapi.yaml")
    result = runner.invoke(cli, ["import", "openapi", source, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == convert(
        "openapi", fixture("petstore.openapi.yaml")
    )


# -- OpenAPI --------------------------------------------------------------------


@pytest.fixture(scope="module")
def petstore():
    return imported("openapi", fixture("petstore.openapi.yaml"))


def test_openapi3_base_url_name_and_variables(petstore):
    assert petstore["name"] == "Petstore"
    assert petstore["description"].startswith("A small pet shop.")
    assert "Imported from OpenAPI 3.0.3." in petstore["description"]
    # servers[0].url with its variables' defaults.
    assert petstore["defaults"] == {"baseUrl": "https://eu.petstore.example.com/v1"}
    assert petstore["variables"] == {
        "limit": 20,
        "X-Request-Id": "req-1",
        "token": "",
        "petId": 7,
    }


def test_openapi3_operations_in_document_order(petstore):
    assert [(n["id"], n["name"], n["method"], n["url"]) for n in petstore["nodes"]] == [
        ("listPets", "List pets", "GET", "/pets?limit={{ .vars.limit }}"),
        ("createPet", "Create a pet", "POST", "/pets"),
        ("get-pets-petid", "Show a pet", "GET", "/pets/{{ .vars.petId }}"),
        ("updatePet", "Update a pet", "PUT", "/pets/{{ .vars.petId }}"),
        ("deletePet", "deletePet", "DELETE", "/pets/{{ .vars.petId }}"),
        ("uploadPhoto", "uploadPhoto", "POST", "/pets/{{ .vars.petId }}/photo"),
    ]


def test_openapi3_headers_from_parameters_and_security(petstore):
    nodes = by_id(petstore)
    assert nodes["listPets"]["headers"] == {
        "X-Request-Id": "{{ .vars.X-Request-Id }}",
        "Authorization": "Bearer {{ .vars.token }}",
    }
    # security: [] on the operation turns the document's requirement off.
    assert "headers" not in nodes["deletePet"]


def test_openapi3_bodies_from_example_and_schema(petstore):
    nodes = by_id(petstore)
    # From the schema: $ref resolved, readOnly dropped, format/enum/minimum
    # used, the allOf merged and the cycle back to NewPet cut.
    assert nodes["createPet"]["body"] == {
        "name": "Rex",
        "born": "2024-01-01",
        "vaccinated": True,
        "tags": ["string"],
        "owner": {"email": "user@example.com", "pets": []},
        "kind": "dog",
        "weight": 0.5,
    }
    assert nodes["updatePet"]["body"] == {"name": "Rex", "tag": "dog"}
    assert "body" not in nodes["uploadPhoto"]
    assert "image/png not imported" in nodes["uploadPhoto"]["description"]


def test_openapi3_first_2xx_response_is_checked(petstore):
    assert [n.get("validations") for n in petstore["nodes"]] == [
        [{"httpStatusCode": 200}],
        [{"httpStatusCode": 201}],
        [{"httpStatusCode": 200}],  # an unquoted YAML key
        [{"httpStatusCode": 204}],
        None,  # no 2xx response: flowrun's default applies
        [{"httpStatusCode": 200}],  # 2XX
    ]


def test_swagger2():
    flow = imported("openapi", fixture("petstore.swagger.json"))
    assert flow["defaults"] == {"baseUrl": "https://petstore.example.com/v2"}
    assert flow["variables"] == {"api_key": "", "status": "available", "petId": 1}
    add, find, form = flow["nodes"]
    assert add["id"] == "addPet"
    assert add["headers"] == {"api_key": "{{ .vars.api_key }}"}
    assert add["body"] == {
        "id": 0,
        "category": {"id": 0, "name": "string"},
        "name": "doggie",
        "status": "available",
    }
    assert add["validations"] == [{"httpStatusCode": 200}]
    assert find["url"] == "/pet/findByStatus?status={{ .vars.status }}"
    assert form["url"] == "/pet/{{ .vars.petId }}"
    assert form["body"] == {"name": "doggie"}
    assert form["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    assert form["validations"] == [{"httpStatusCode": 201}]
    assert "File field 'photo' cannot be sent" in form["description"]


def openapi(paths, **top) -> str:
    return json.dumps(
        {"openapi": "3.1.0", "info": {"title": "t"}, "paths": paths, **top}
    )


def test_openapi_relative_or_missing_server_becomes_a_variable():
    paths = {"/a": {"get": {"responses": {"200": {}}}}}
    flow = imported("openapi", openapi(paths, servers=[{"url": "/api/v3"}]))
    assert flow["defaults"]["baseUrl"] == "{{ .vars.baseUrl }}"
    assert flow["variables"] == {"baseUrl": "/api/v3"}
    assert "'baseUrl' variable" in flow["description"]
    flow = imported("openapi", openapi(paths))
    assert flow["variables"] == {"baseUrl": ""}


def test_openapi_swagger_without_host():
    doc = {
        "swagger": "2.0",
        "info": {},
        "basePath": "/v1",
        "paths": {"/a": {"get": {}}},
    }
    flow = imported("openapi", json.dumps(doc))
    assert flow["defaults"]["baseUrl"] == "{{ .vars.baseUrl }}"
    assert flow["variables"] == {"baseUrl": "/v1"}
    assert flow["nodes"][0]["id"] == "get-a"


def test_openapi_operation_server_and_31_types():
    paths = {
        "/up": {
            "servers": [{"url": "https://upload.example.com/"}],
            "post": {
                "operationId": "up load!",
                "requestBody": {
                    "content": {
                        "application/vnd.api+json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "n": {"type": ["integer", "null"]},
                                    "c": {"const": "x"},
                                    "e": {"examples": ["first"]},
                                    "o": {
                                        "oneOf": [
                                            {"type": "string"},
                                            {"type": "integer"},
                                        ]
                                    },
                                },
                            }
                        }
                    }
                },
                "responses": {"default": {}, "202": {}},
            },
        }
    }
    flow = imported(
        "openapi", openapi(paths, servers=[{"url": "https://api.example.com"}])
    )
    [node] = flow["nodes"]
    assert node["id"] == "up-load"
    assert node["url"] == "https://upload.example.com/up"
    assert node["headers"] == {"Content-Type": "application/vnd.api+json"}
    assert node["body"] == {"n": 0, "c": "x", "e": "first", "o": "string"}
    assert node["validations"] == [{"httpStatusCode": 202}]


def test_openapi_form_body_and_scalar_json_body():
    form = {
        "post": {
            "requestBody": {
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {"properties": {"user": {"type": "string"}}}
                    }
                }
            }
        },
        "put": {
            "requestBody": {
                "content": {"application/json": {"schema": {"type": "integer"}}}
            }
        },
    }
    nodes = imported("openapi", openapi({"/f": form}))["nodes"]
    assert nodes[0]["body"] == {"user": "string"}
    assert nodes[0]["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    assert nodes[1]["body"] == "0"


def test_openapi_yaml_dates_and_integer_keys_become_json():
    text = """
openapi: 3.0.0
info: {title: Dates}
paths:
  /d/{day}:
    get:
      parameters:
        - {name: day, in: path, required: true, example: 2024-05-01}
      responses:
        201: {description: made}
"""
    flow = imported("openapi", text)
    assert flow["variables"]["day"] == "2024-05-01"
    assert flow["nodes"][0]["validations"] == [{"httpStatusCode": 201}]
    json.dumps(flow)


def test_openapi_a_reference_to_nothing_is_a_note_on_its_operation():
    content = (
        '{"openapi": "3.0.0", "servers": [{"url": "https://a.example"}], "paths": '
        '{"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}, '
        '"/b": {"get": {}}}}'
    )
    flow = imported("openapi", content)
    assert [n["url"] for n in flow["nodes"]] == ["/a", "/b"]
    assert flow["nodes"][0]["description"] == (
        "$ref #/components/parameters/Nope points to nothing: left out."
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("openapi: [unclosed", ("not valid JSON or YAML", "(line ")),
        ("- just\n- a list\n", ("must be a JSON or YAML object",)),
        ("title: x\n", ("not an OpenAPI document",)),
        ('{"openapi": "4.0.0", "paths": {}}', ("OpenAPI 4.0.0 is not supported",)),
        ('{"swagger": "1.2", "paths": {}}', ("Swagger 1.2 is not supported",)),
        ('{"openapi": "3.0.0"}', ("has no 'paths' (nor 'webhooks')",)),
        (
            '{"openapi": "3.0.0", "paths": {"/a": {"x-y": {}}}}',
            ("nothing to import: no request found",),
        ),
    ],
)
def test_openapi_bad_input(content, words):
    refused("openapi", content, *words)


def test_openapi_yaml_alias_bomb_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("openapi: 3.0.0")
    refused("openapi", "\n".join(lines), "too large")


def test_openapi_self_referencing_yaml_is_refused():
    refused("openapi", "openapi: 3.0.0\npaths: &p {a: *p}\n", "nested too deeply")


def test_openapi_cyclic_refs_do_not_loop():
    doc = {
        "openapi": "3.0.0",
        "info": {},
        "paths": {
            "/a": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/A"}
                            }
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "A": {"$ref": "#/components/schemas/B"},
                "B": {
                    "type": "object",
                    "properties": {"a": {"$ref": "#/components/schemas/A"}},
                },
            }
        },
    }
    [node] = imported("openapi", json.dumps(doc))["nodes"]
    assert node["body"] == {"a": None}


def test_openapi_wide_deep_schemas_are_sketched_within_a_budget():
    schemas = {
        f"S{i}": {
            "type": "object",
            "properties": {
                f"p{j}": {"$ref": f"#/components/schemas/S{i + 1}"} for j in range(8)
            },
        }
        for i in range(12)
    }
    schemas["S12"] = {"type": "string"}
    media = {"schema": {"$ref": "#/components/schemas/S0"}}
    paths = {"/a": {"post": {"requestBody": {"content": {"application/json": media}}}}}
    flow = imported("openapi", openapi(paths, components={"schemas": schemas}))
    [node] = flow["nodes"]
    assert set(node["body"]) == {f"p{j}" for j in range(8)}
    assert "cut short" in node["description"]


def test_openapi_end_to_end_against_the_target(target):
    doc = f"""
openapi: 3.0.3
info: {{title: Demo}}
servers: [{{url: "{target.url}/demo"}}]
paths:
  /items:
    post:
      operationId: createItem
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                name: {{type: string, example: lamp}}
                price: {{type: number, example: 9.5}}
      responses:
        "201": {{description: created}}
        "400": {{description: bad}}
  /items/{{itemId}}:
    get:
      operationId: getItem
      parameters:
        - name: itemId
          in: path
          required: true
          schema: {{type: integer, example: 2}}
      responses:
        "200": {{description: the item}}
  /echo:
    get:
      operationId: echo
      parameters:
        - {{name: q, in: query, required: true, example: "a b"}}
      responses:
        "200": {{description: echoed}}
"""
    flow = imported("openapi", doc)
    events = [(e.name, e.to_dict()) for e in Run(flow).events()]
    steps = [data for name, data in events if name == "step"]
    assert [s["status"] for s in steps] == ["completed"] * 3, steps
    assert steps[0]["response"]["status"] == 201
    assert steps[0]["response"]["body"]["name"] == "lamp"
    assert steps[1]["response"]["body"]["id"] == 2
    assert steps[2]["response"]["body"]["args"] == {"q": ["a b"]}


@pytest.mark.parametrize(
    ("schemes", "base"),
    [
        (["http"], "http://h.example/v1"),
        (["http", "https"], "https://h.example/v1"),
        (["wss"], "https://h.example/v1"),
        (None, "https://h.example/v1"),
    ],
)
def test_swagger_scheme(schemes, base):
    doc = {"swagger": "2.0", "host": "h.example", "basePath": "/v1/"}
    doc.update(paths={"/a": {"get": {}}}, schemes=schemes)
    assert imported("openapi", json.dumps(doc))["defaults"] == {"baseUrl": base}


# -- failure classes found importing real collections, documents and commands -----


def test_postman_query_in_url_query_but_not_in_raw_is_sent():
    url = {
        "raw": "https://a.example/search",
        "host": ["a", "example"],
        "path": ["search"],
        "query": [
            {"key": "q", "value": "{{term}}"},
            {"key": "page", "value": "2"},
            {"key": "flag", "value": None},
            {"key": "off", "value": "1", "disabled": True},
        ],
    }
    [node] = imported("postman", postman(request(url=url)))["nodes"]
    assert node["url"] == "/search?q={{ .vars.term }}&page=2&flag"


@pytest.mark.parametrize(
    ("lines", "validations"),
    [
        (
            ["pm.expect(pm.response.code).to.be.oneOf([200, 201, 204]);"],
            [{"httpStatusCode": [200, 201, 204]}],
        ),
        (
            [
                "const ok = [200, 202];",
                'pm.expect(pm.response.code).to.be.oneOf(ok, "expected");',
            ],
            [{"httpStatusCode": [200, 202]}],
        ),
        (
            ['pm.expect(pm.response.code).to.be.equal(201, "Created");'],
            [{"httpStatusCode": 201}],
        ),
        (
            [
                'tests["Status " + responseCode.code] = responseCode.code === 200'
                " || responseCode.code === 201;"
            ],
            [{"httpStatusCode": [200, 201]}],
        ),
        (
            ['tests["has id"] = responseBody.has("id");'],
            [{"jq": "tostring", "contains": "id"}],
        ),
        (["pm.response.to.be.json;"], [{"header": "Content-Type", "contains": "json"}]),
        (
            ["pm.response.to.be.success;"],
            [{"httpStatusCode": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226]}],
        ),
        (
            ['pm.expect(pm.response.json().n, "count").to.equal(3, "three");'],
            [{"jsonpath": ".n", "equals": 3}],
        ),
        (["} else {", "  break;", "};", "try {", "} catch (e) {"], []),
    ],
)
def test_postman_common_test_forms_become_validations(lines, validations):
    item = request()
    item["event"] = [{"listen": "test", "script": {"exec": lines}}]
    [node] = imported("postman", postman(item))["nodes"]
    assert node.get("validations", []) == validations
    # Lines carrying no check of their own (braces, break) are not "left out".
    assert "not translated" not in node.get("description", "")


def test_postman_variables_made_of_variables_are_written_where_used():
    items = [request(url="{{api}}/users")]
    variables = [
        {"key": "host", "value": "a.example"},
        {"key": "api", "value": "https://{{host}}/v1"},
    ]
    flow = imported("postman", postman(*items, variable=variables))
    assert flow["defaults"]["baseUrl"] == "https://{{ .vars.host }}"
    assert flow["nodes"][0]["url"] == "/v1/users"
    # Never sent as the literal text "{{host}}".
    assert flow["variables"] == {"host": "a.example"}


def test_postman_folder_and_request_variables_become_flow_variables():
    item = request(url="https://a.example/{{a}}/{{b}}")
    item["variable"] = [{"key": "b", "value": "2"}]
    folder = {"name": "F", "variable": [{"key": "a", "value": "1"}], "item": [item]}
    flow = imported("postman", postman(folder))
    assert flow["variables"] == {"a": "1", "b": "2"}


@pytest.mark.parametrize(
    ("auth", "header", "words"),
    [
        (
            {"type": "oauth2", "oauth2": [{"key": "accessToken", "value": "t0k"}]},
            "Bearer t0k",
            None,
        ),
        (
            {"type": "oauth2", "oauth2": [{"key": "grant_type", "value": "x"}]},
            "Bearer {{ .vars.accessToken }}",
            "holds no access token",
        ),
        (
            {"type": "basic", "basic": {"username": "{{u}}", "password": "p"}},
            "Basic {{ .vars.basicAuth }}",
            "base64 encoding",
        ),
        ({"type": "hawk", "hawk": []}, None, "Hawk signs each request"),
        ({"type": "awsv4", "awsv4": []}, None, "AWS Signature v4"),
        ({"type": "ntlm", "ntlm": []}, None, "NTLM"),
        ({"type": "edgegrid", "edgegrid": []}, None, "EdgeGrid"),
    ],
)
def test_postman_every_auth_type_is_sent_or_noted(auth, header, words):
    [node] = imported("postman", postman(request(auth=auth)))["nodes"]
    assert node.get("headers", {}).get("Authorization") == header
    if words:
        assert words in node["description"]


def test_postman_what_the_checks_refuse_is_mended_with_a_note():
    items = [
        # A header named after a dynamic variable, as some exports have.
        request("Bad header", header=[{"key": "{{$guid}}", "value": "x"}]),
        # A stray }} in the URL: what the HTTP client sends, percent-encoded.
        request("Braces", url="https://api.example.com/x}}y"),
        # A JSON text body with a form Content-Type: sent as written.
        request(
            "Form",
            method="POST",
            header=[
                {"key": "Content-Type", "value": "application/x-www-form-urlencoded"}
            ],
            body={"mode": "raw", "raw": '{"a": 1}'},
        ),
    ]
    content = postman(*items)
    flow = imported("postman", content, ["nodes[2].body"])
    bad, braces, form = flow["nodes"]
    assert "headers" not in bad
    assert "Header '{ {$guid} }' left out" in bad["description"]
    assert braces["url"] == "/x%7D%7Dy"
    assert form["bodyFormat"] == "text"
    # (The form one is sent exactly as Postman sends it: no note needed.)
    assert report("postman", content)["withNotes"] == 2


def test_postman_literal_braces_are_escaped():
    item = request(
        method="POST",
        header=[{"key": "X-Template", "value": "{{ not closed"}],
        body={"mode": "raw", "raw": "Dear {{ name, {{who}}"},
    )
    [node] = imported("postman", postman(item))["nodes"]
    assert node["headers"]["X-Template"] == "\\{{ not closed"
    assert node["body"] == "Dear \\{{ name, {{ .vars.who }}"


@pytest.mark.parametrize("fmt", ["postman", "openapi", "curl"])
def test_flowrun_max_steps_truncates_an_import_with_a_note(fmt):
    count = 7
    if fmt == "postman":
        content = postman(
            *[request(f"R{i}", url=f"https://a.example/{i}") for i in range(count)]
        )
    elif fmt == "openapi":
        paths = {f"/p{i}": {"get": {}} for i in range(count)}
        content = json.dumps(
            {
                "openapi": "3.0.0",
                "servers": [{"url": "https://a.example"}],
                "paths": paths,
            }
        )
    else:
        content = "\n".join(f"curl https://a.example/{i}" for i in range(count))
    result = load(fmt, content, max_steps=5)
    assert len(result.flow["nodes"]) == 5
    counts = {k: v for k, v in result.report.as_dict().items() if k != "notes"}
    assert counts["requests"] == 7
    assert counts["leftOut"] == 2
    assert "2 requests from" in result.flow["description"]
    assert "FLOWRUN_MAX_STEPS" in result.report.notes[-1].message


def test_api_and_cli_imports_honour_flowrun_max_steps(tmp_path, runner, monkeypatch):
    from flowrun import create_app

    content = "\n".join(f"curl https://a.example/{i}" for i in range(4))
    app = create_app(
        {
            "TESTING": True,
            "FLOWRUN_DATA_DIR": str(tmp_path / "d"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "f"),
            "FLOWRUN_MAX_STEPS": 3,
        }
    )
    try:
        resp = app.test_client().post(
            "/api/import", json={"format": "curl", "content": content}
        )
    finally:
        app.extensions["flowrun"].close()
    assert resp.status_code == 200
    assert len(resp.get_json()["nodes"]) == 3
    assert resp.get_json()["importReport"]["leftOut"] == 1
    monkeypatch.setenv("FLOWRUN_MAX_STEPS", "2")
    result = runner.invoke(cli, ["import", "curl", "-"], input=content)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["nodes"]) == 2
    assert "4 requests: 2 as they were, 2 left out" in result.stderr


def test_cli_import_prints_the_counts_and_each_note(runner, tmp_path):
    source = tmp_path / "c.json"
    source.write_text(postman(request("Ok"), request("Link", method="LINK")))
    result = runner.invoke(cli, ["import", "postman", str(source)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["nodes"][1]["name"] == "Link"
    err = result.stderr.splitlines()
    assert err[0] == (
        f"Imported {source}: 2 requests: 1 as they were, 1 skipped by default"
    )
    assert err[1] == "  Link: skipped by default: method LINK is not one flowrun sends"


def test_openapi_the_first_security_alternative_flowrun_can_send_wins():
    doc = {
        "openapi": "3.0.0",
        "servers": [{"url": "https://a.example"}],
        "components": {
            "securitySchemes": {
                "mtls": {"type": "mutualTLS"},
                "digest": {"type": "http", "scheme": "digest"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "key": {"type": "apiKey", "in": "query", "name": "api_key"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "sid"},
            }
        },
        "paths": {
            "/a": {"get": {"security": [{"mtls": []}, {"bearer": []}]}},
            "/b": {"get": {"security": [{"digest": []}, {"key": [], "cookie": []}]}},
            "/c": {"get": {"security": [{"mtls": []}]}},
            "/d": {"get": {"security": [{}, {"bearer": []}]}},
        },
    }
    a, b, c, d = imported("openapi", json.dumps(doc))["nodes"]
    assert a["headers"] == {"Authorization": "Bearer {{ .vars.token }}"}
    assert b["url"] == "/b?api_key={{ .vars.api_key }}"
    assert b["headers"] == {"Cookie": "sid={{ .vars.sid }}"}
    assert "headers" not in c
    assert "None of its security alternatives (mtls)" in c["description"]
    assert "headers" not in d  # {} first: no credentials needed


def test_openapi_get_gets_no_body_and_one_of_skips_a_null_choice():
    schema = {
        "anyOf": [
            {"type": "null"},
            {"type": "object", "properties": {"a": {"type": "integer"}}},
        ]
    }
    content = {"application/json": {"schema": schema}}
    doc = {
        "openapi": "3.1.0",
        "servers": [{"url": "https://a.example"}],
        "paths": {
            "/x": {
                "get": {"requestBody": {"content": content}},
                "post": {"requestBody": {"content": content}},
            }
        },
    }
    get, post = imported("openapi", json.dumps(doc))["nodes"]
    assert "body" not in get
    assert "flowrun sends none on a GET" in get["description"]
    assert post["body"] == {"a": 0}


def test_openapi_a_webhooks_only_document_is_imported_skipped_by_default():
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "hooks"},
        "webhooks": {
            "newPet": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"example": {"id": 1}}}
                    }
                }
            }
        },
    }
    result = load("openapi", json.dumps(doc))
    [node] = result.flow["nodes"]
    assert node["url"] == "{{ .vars.webhookUrl }}"
    assert node["body"] == {"id": 1}
    assert result.report.skipped == 1


def test_openapi_refs_into_neighbouring_files_are_followed(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "pet.yaml").write_text(
        "type: object\nproperties:\n  name: {type: string, example: Rex}\n"
        "  owner: {$ref: '#/definitions/Owner'}\n"
        "definitions:\n  Owner: {type: object, properties: {id: {type: integer}}}\n"
    )
    (tmp_path / "paths.yaml").write_text(
        "/pets:\n  post:\n    requestBody:\n      content:\n        application/json:"
        "\n          schema: {$ref: 'schemas/pet.yaml'}\n"
    )
    main = tmp_path / "api.yaml"
    main.write_text(
        "openapi: 3.0.0\nservers: [{url: 'https://a.example'}]\n"
        "paths: {$ref: 'paths.yaml'}\n"
    )
    flow = load("openapi", main.read_text(), path=main).flow
    assert flow["nodes"][0]["body"] == {"name": "Rex", "owner": {"id": 0}}
    # Without the file's place (the API), the reference cannot be followed: here
    # that leaves nothing, and the refusal says why.
    exc = refused("openapi", main.read_text(), "nothing to import")
    assert "$ref paths.yaml (another document) was not followed" in json.dumps(
        exc.errors
    )


def test_openapi_literal_braces_in_examples_are_escaped():
    media = {"application/json": {"example": {"template": "Hi {{ name }}"}}}
    doc = {
        "openapi": "3.0.0",
        "servers": [{"url": "https://a.example"}],
        "paths": {"/t": {"post": {"requestBody": {"content": media}}}},
    }
    [node] = imported("openapi", json.dumps(doc))["nodes"]
    assert node["body"] == {"template": "Hi \\{{ name }}"}


def test_curl_one_unclosed_quote_does_not_sink_the_other_commands():
    text = (
        "curl https://a.example/one\ncurl 'https://a.example/two\n"
        "curl https://a.example/three\n"
    )
    result = load("curl", text)
    # The shell would refuse it all; the other commands are imported.
    assert [n["url"] for n in result.flow["nodes"]] == ["/one", "/three"]
    assert result.report.left_out == 1
    text = "curl https://a.example/one\ncurl https://a.example/two -d 'x\n"
    result = load("curl", text)
    assert [n["url"] for n in result.flow["nodes"]] == ["/one"]
    assert "quote is not closed" in result.report.notes[-1].message


def test_curl_a_pipeline_of_curls_and_a_whole_url_variable():
    text = (
        "echo hi | curl -d @- https://a.example/a | curl https://a.example/b\n"
        "curl $URL\n"
        "curl ftp://a.example/f\n"
    )
    result = load("curl", text)
    nodes = result.flow["nodes"]
    assert [(n["method"], n["url"]) for n in nodes] == [
        ("POST", "https://a.example/a"),
        ("GET", "https://a.example/b"),
        ("GET", "{{ .vars.URL }}"),
    ]
    assert nodes[0]["body"] == "hi"
    assert result.report.left_out == 1
    assert "a ftp URL (flowrun sends HTTP only)" in result.report.notes[-1].message
