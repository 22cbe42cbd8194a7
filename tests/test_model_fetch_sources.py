"""The one model source syntax: every scheme parsed, every bad input refused with a message that helps."""

import pytest
from qwen_infra.model_sources import (
    MANIFEST_NAME,
    RemoteFile,
    Source,
    SourceError,
    canonical,
    file_url,
    hf_files,
    listed_files,
    listing_url,
    modelscope_files,
    parse_manifest,
    parse_source,
    prequantized_repo,
    s3_endpoint,
    s3_error,
    select,
)

SHA = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("controller:/srv/models/qwen3", Source("controller", "/srv/models/qwen3")),
        ("controller:/srv/models/qwen3/", Source("controller", "/srv/models/qwen3")),
        ("modelscope:Qwen/Qwen3-8B@master", Source("modelscope", "Qwen/Qwen3-8B", revision="master")),
        ("modelscope:Qwen/Qwen3-8B@v1.0.2", Source("modelscope", "Qwen/Qwen3-8B", revision="v1.0.2")),
        ("hf:Qwen/Qwen3-8B-AWQ@9c925d6", Source("hf", "Qwen/Qwen3-8B-AWQ", revision="9c925d6")),
        ("https://mirror.local/qwen3-8b", Source("http", "https://mirror.local/qwen3-8b/")),
        ("http://10.0.0.5:8080/m/qwen3/", Source("http", "http://10.0.0.5:8080/m/qwen3/")),
        ("s3://models/qwen/qwen3-8b", Source("s3", "models", prefix="qwen/qwen3-8b/")),
        ("s3://models", Source("s3", "models")),
    ],
)
def test_every_scheme_parses(text, expected):
    assert parse_source(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ftp://mirror/qwen", "unsupported scheme 'ftp'"),
        pytest.param("/srv/models/qwen3", "unsupported scheme", id="no-scheme"),
        pytest.param("", "unsupported scheme", id="empty"),
        ("controller:models/qwen3", "absolute directory"),
        pytest.param("modelscope:Qwen/Qwen3-8B", "has no revision", id="no-at"),
        pytest.param("modelscope:Qwen/Qwen3-8B@", "has no revision", id="empty-revision"),
        pytest.param("hf:Qwen3-8B@main", "ORG/NAME", id="no-org"),
        pytest.param("modelscope:Qwen/../etc@main", "ORG/NAME", id="path-in-model-id"),
        ("hf:Qwen/Qwen3-8B@../../x", "is not a branch, tag or commit"),
        pytest.param("https://", "plain URL", id="no-host"),
        pytest.param("https://mirror/q?token=1", "plain URL", id="query"),
        ("s3:bucket/prefix", "s3://bucket/prefix"),
        ("s3://B_ad/prefix", "not a valid bucket name"),
    ],
)
def test_bad_sources_are_refused_clearly(text, says):
    with pytest.raises(SourceError, match=None) as error:
        parse_source(text)
    assert says in str(error.value)


@pytest.mark.parametrize(
    "text",
    [
        "modelscope:Qwen/Qwen3-8B@master",
        "hf:Qwen/Qwen3-8B@abc",
        "https://m/x/",
        "s3://bucket/p/",
        "controller:/d",
    ],
)
def test_canonical_form_parses_back_to_the_same_source(text):
    source = parse_source(text)
    assert parse_source(canonical(source)) == source


def test_urls_of_each_source():
    ms = parse_source("modelscope:Qwen/Qwen3-8B@v1")
    assert (
        listing_url(ms, "http://h/")
        == "http://h/api/v1/models/Qwen/Qwen3-8B/repo/files?Revision=v1&Recursive=True"
    )
    assert file_url(ms, "http://h", "a b.json") == (
        "http://h/api/v1/models/Qwen/Qwen3-8B/repo?Revision=v1&FilePath=a+b.json"
    )
    hf = parse_source("hf:Qwen/Qwen3-8B@main")
    assert listing_url(hf, "http://h") == "http://h/api/models/Qwen/Qwen3-8B/tree/main?recursive=true"
    assert file_url(hf, "http://h", "config.json") == "http://h/Qwen/Qwen3-8B/resolve/main/config.json"
    mirror = parse_source("https://m/qwen")
    assert listing_url(mirror, "") == f"https://m/qwen/{MANIFEST_NAME}"
    s3 = parse_source("s3://bucket/qwen/8b")
    assert file_url(s3, "http://minio:9000", "config.json") == "http://minio:9000/bucket/qwen/8b/config.json"


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("", "https://s3.us-east-1.amazonaws.com"),
        ("eu-west-1", "https://s3.eu-west-1.amazonaws.com"),
        ("cn-north-1", "https://s3.cn-north-1.amazonaws.com.cn"),
    ],
)
def test_s3_endpoint_is_the_regions_own(region, endpoint):
    assert s3_endpoint(region) == endpoint


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
            b"<RequestId>1</RequestId></Error>",
            {"Code": "AccessDenied", "Message": "Access Denied"},
        ),
        (
            b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; "
            b"expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>",
            {
                "Code": "AuthorizationHeaderMalformed",
                "Message": "the region 'us-east-1' is wrong; expecting 'eu-west-1'",
                "Region": "eu-west-1",
            },
        ),
        pytest.param(b'{"error": "not xml"}', {}, id="not-an-s3-error"),
    ],
)
def test_s3_error_bodies_are_read(body, expected):
    assert s3_error(body) == expected


def test_a_listing_passed_as_data_is_checked_entry_by_entry():
    good = {"path": "config.json", "size": 10, "sha256": SHA.upper()}
    assert listed_files([good]) == [RemoteFile("config.json", 10, SHA)]


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        ([], "the listing is empty"),
        (["config.json"], "must be {path, size, sha256}"),
        ([{"path": "../x", "size": 1, "sha256": SHA}], "unsafe file path"),
        ([{"path": "x", "size": -1, "sha256": SHA}], "no size in bytes"),
        ([{"path": "x", "size": True, "sha256": SHA}], "no size in bytes"),
        ([{"path": "x", "size": 1, "sha256": "abc"}], "no sha256"),
        ([{"size": 1, "sha256": SHA}], "has no path"),
    ],
)
def test_a_bad_listing_is_refused(entries, says):
    with pytest.raises(SourceError) as error:
        listed_files(entries)
    assert says in str(error.value)


def test_manifest_in_sha256sum_format():
    text = f"{SHA}  config.json\n{'b' * 64} *sub/model.safetensors\n\n# comment\n"
    assert parse_manifest(text) == {"config.json": SHA, "sub/model.safetensors": "b" * 64}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "lists no files"),
        ("xyz  config.json\n", "line 1"),
        (f"{SHA}  ../etc/passwd\n", "unsafe file path"),
        (f"{SHA}  /etc/passwd\n", "unsafe file path"),
    ],
)
def test_bad_manifests_are_refused(text, says):
    with pytest.raises(SourceError) as error:
        parse_manifest(text)
    assert says in str(error.value)


def test_modelscope_listing_keeps_files_with_their_sha256():
    entries = [
        {"Path": "config.json", "Type": "blob", "Size": 10, "Sha256": SHA.upper()},
        {"Path": "sub", "Type": "tree", "Size": 0, "Sha256": ""},
    ]
    assert modelscope_files(entries) == [RemoteFile("config.json", 10, SHA)]
    with pytest.raises(SourceError, match="without a sha256"):
        modelscope_files([{"Path": "x", "Type": "blob", "Size": 1, "Sha256": ""}])


def test_hf_listing_uses_lfs_sha256_and_git_blob_ids():
    tree = [
        {"type": "file", "path": "model.safetensors", "size": 9, "oid": "1" * 40, "lfs": {"oid": SHA}},
        {"type": "file", "path": "config.json", "size": 5, "oid": "2" * 40},
        {"type": "directory", "path": "sub", "oid": "3" * 40},
    ]
    assert hf_files(tree) == [
        RemoteFile("model.safetensors", 9, SHA),
        RemoteFile("config.json", 5, "gitsha1:" + "2" * 40),
    ]


def test_include_and_exclude_globs():
    files = [
        RemoteFile(p, 1, SHA) for p in ("config.json", "model.safetensors", "original/x.pth", "README.md")
    ]
    assert [f.path for f in select(files, [], ["original/*", "*.md"])] == ["config.json", "model.safetensors"]
    assert [f.path for f in select(files, ["*.json"], [])] == ["config.json"]


@pytest.mark.parametrize(
    ("model", "precision", "expected"),
    [
        ("Qwen/Qwen3-8B", "awq", ("Qwen/Qwen3-8B-AWQ", True)),
        ("Qwen3-32B", "fp8", ("Qwen/Qwen3-32B-FP8", True)),
        ("Qwen/Qwen2.5-72B-Instruct", "gptq", ("Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4", True)),
        ("Qwen/Qwen3-0.6B", "awq", ("Qwen/Qwen3-0.6B", False)),  # no official AWQ: quantize it yourself
        ("Qwen/Qwen3-8B", "bf16", ("Qwen/Qwen3-8B", False)),
    ],
)
def test_official_prequantized_checkpoints_are_preferred(model, precision, expected):
    assert prequantized_repo(model, precision) == expected


def test_unknown_precision_is_refused():
    with pytest.raises(SourceError, match="int3"):
        prequantized_repo("Qwen/Qwen3-8B", "int3")
