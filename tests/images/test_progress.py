"""The engine's progress events → job bars and output (pure; events as the engine sends
them, captured from Docker 20.10 pulls, pushes and builds)."""

from images.progress import StreamFollower, classify, explain

PULL = [
    {"status": "Pulling from team/app", "id": "1.0"},
    {"status": "Already exists", "progressDetail": {}, "id": "c6ea23e3af49"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "0ba9f9989d90"},
    {"status": "Waiting", "progressDetail": {}, "id": "0ba9f9989d90"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 524288, "total": 1500655},
        "progress": "[=====>    ]",
        "id": "0ba9f9989d90",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "0ba9f9989d90"},
    {"status": "Download complete", "progressDetail": {}, "id": "0ba9f9989d90"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 750000, "total": 1500655},
        "id": "0ba9f9989d90",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "0ba9f9989d90"},
    {"status": "Digest: sha256:" + "7" * 64},
    {"status": "Status: Downloaded newer image for 127.0.0.1:5000/team/app:1.0"},
]


class Recorder:
    def __init__(self):
        self.lines, self.bars, self.history = [], {}, []

    def line(self, text):
        self.lines.append(text)

    def progress(self, key, *, status="", current=None, total=None, unit=""):
        self.bars[key] = {"status": status, "current": current, "total": total}
        self.history.append((key, status, current, total))


def test_pull_events_become_one_bar_per_layer_that_only_grows():
    out = Recorder()
    follower = StreamFollower(out).feed_all(PULL)

    assert follower.error == ""
    assert follower.digest == "sha256:" + "7" * 64
    assert out.bars["c6ea23e3af49"]["status"] == "Already exists"
    assert out.bars["0ba9f9989d90"] == {
        "status": "Pull complete",
        "current": 1500655,
        "total": 1500655,
    }
    downloaded = [c for k, s, c, t in out.history if k == "0ba9f9989d90" and c is not None]
    assert downloaded == sorted(downloaded)  # extraction does not send the bar back
    assert ("0ba9f9989d90", "Extracting 49%", 1500655, 1500655) in out.history
    assert out.lines[0] == "Pulling from team/app 1.0"


def test_push_events_record_the_digest():
    out = Recorder()
    follower = StreamFollower(out).feed_all(
        [
            {"status": "The push refers to repository [127.0.0.1:5000/team/app]"},
            {"status": "Preparing", "progressDetail": {}, "id": "a1"},
            {"status": "Pushing", "progressDetail": {"current": 10, "total": 100}, "id": "a1"},
            {"status": "Pushed", "progressDetail": {}, "id": "a1"},
            {"status": "Layer already exists", "progressDetail": {}, "id": "b2"},
            {"status": "1.0: digest: sha256:" + "a" * 64 + " size: 739"},
            {"progressDetail": {}, "aux": {"Tag": "1.0", "Digest": "sha256:" + "a" * 64}},
        ]
    )
    assert follower.digest == "sha256:" + "a" * 64
    assert out.bars["a1"] == {"status": "Pushed", "current": 100, "total": 100}
    assert out.bars["b2"]["status"] == "Layer already exists"


def test_build_stream_lines_and_errors():
    out = Recorder()
    follower = StreamFollower(out).feed_all(
        [
            {"stream": "Step 1/2 : FROM busybox\n"},
            {"stream": " ---> b3a21e2e420d\n"},
            {"stream": "Step 2/2 : RUN false\n"},
            {"stream": " ---> Running in 1f\n"},
            {
                "errorDetail": {
                    "code": 1,
                    "message": "The command '/bin/sh -c false' returned a non-zero code: 1",
                },
                "error": "The command '/bin/sh -c false' returned a non-zero code: 1",
            },
        ]
    )
    assert "returned a non-zero code: 1" in follower.error
    assert out.lines[:2] == ["Step 1/2 : FROM busybox", " ---> b3a21e2e420d"]


def test_load_stream_names_what_was_loaded():
    follower = StreamFollower(Recorder()).feed_all(
        [{"stream": "Loaded image: team/app:1\n"}, {"stream": "Loaded image ID: sha256:abc\n"}]
    )
    assert follower.loaded == ["team/app:1"] and follower.image_id == "sha256:abc"


def test_registry_errors_are_classified():
    assert (
        classify('Head "http://127.0.0.1:5000/v2/x/manifests/1": no basic auth credentials')
        == "unauthorized"
    )
    assert classify("unauthorized: authentication required") == "unauthorized"
    assert (
        classify(
            'Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused'
        )
        == "unreachable"
    )
    assert classify("manifest for 127.0.0.1:5000/x:1 not found: manifest unknown") == "not found"
    assert classify("something else") == ""
    message = explain("Pull", "r/x:1", "unauthorized: authentication required")
    assert message.startswith("Pull of r/x:1 failed: unauthorized")
