"""Start the playground: `python -m playground [--host 127.0.0.1] [--port 7860] [--share] [--auth user:pass]`.

`--ray-address auto|HOST:PORT` (or EAGER_PLAYGROUND_RAY_ADDRESS) serves the models from a Ray cluster and starts
training runs as Ray Jobs there (docs/scale.md; needs requirements-scale.txt)."""

from __future__ import annotations

import argparse
import os
import sys
import threading

from playground.quick_import import skip_gradio_stubs

MAX_UPLOAD = "50mb"  # a picture to caption, a text to train on; bigger uploads are refused by Gradio
CACHE_SWEEP_SECONDS = 60
CACHE_AGE_SECONDS = 600  # results older than 10 minutes are gone from the server (the page keeps showing them)
# Gradio's queue: events without a limit of their own run two at a time (digits, training); the text, translate and
# caption endpoints set theirs (their tab modules' CONCURRENT_*), since their requests are batched together. At most
# QUEUE_SIZE requests wait; the next one is told the queue is full. benchmarks/serving.py measured these.
DEFAULT_CONCURRENCY = 2
QUEUE_SIZE = 256
MAX_THREADS = 100  # Gradio's worker threads (default 40): a text stream holds one while it waits for its chunks
# After every event Gradio's queue rebuilds a pandas summary of up to 10,000 past events (1 ms at 100, 6 ms at
# 10,000, in a worker thread under the interpreter lock) for its monitoring dashboard, which this app does not
# enable; 8.6 % of the app's Python samples at 16 text users (py-spy). Recomputed once in GRADIO_ANALYTICS_EVERY
# events, over the last GRADIO_ANALYTICS_KEPT, it costs nothing that matters (docs/speed.md).
GRADIO_ANALYTICS_EVERY = 1_000_000
GRADIO_ANALYTICS_KEPT = 1_000


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Caps glibc's malloc arenas (as MALLOC_ARENA_MAX does) before any thread starts.

    glibc gives each new thread that contends for memory an arena of its own, up to 8 per core, and freed memory
    stays in its arena: with 16 users the app's RSS grew 1164 -> 1347 MB in 3 minutes, with 2 arenas 1062 -> 1108 MB
    at the same latency (docs/reliability.md). Returns whether the cap was set (False off glibc)."""
    import ctypes
    import ctypes.util

    if os.environ.get("MALLOC_ARENA_MAX"):
        return True  # the user's own setting wins
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-8, arenas))  # -8 is M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):
        return False


def main(argv=None) -> None:
    limit_malloc_arenas()
    skip_gradio_stubs()  # before anything imports Gradio: about 1 s less to the first page (quick_import)
    parser = argparse.ArgumentParser(prog="python -m playground", description="Eager Playground, a Gradio app.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link (off)")
    parser.add_argument("--auth", default=None, metavar="USER:PASSWORD", help="require a login")
    parser.add_argument("--checkpoints", default=None, help="checkpoints folder (default: the shipped ones)")
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="a Ray cluster (auto, HOST:PORT) whose Serve deployments answer the models and whose "
                             "Jobs train (default: EAGER_PLAYGROUND_RAY_ADDRESS, else in-process models)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    auth = None
    if args.auth:
        user, _, password = args.auth.partition(":")
        if not user or not password:
            parser.error("--auth must look like USER:PASSWORD")
        from playground.auth import ThrottledLogin, hide_api_before_login

        hide_api_before_login()
        auth = ThrottledLogin(user, password).check
    if args.checkpoints:
        os.environ["EAGER_PLAYGROUND_CHECKPOINTS"] = args.checkpoints
    if args.ray_address:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            parser.error("--ray-address needs Ray: pip install -r requirements-scale.txt")
        os.environ["EAGER_PLAYGROUND_RAY_ADDRESS"] = args.ray_address
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(GRADIO_ANALYTICS_EVERY))
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", str(GRADIO_ANALYTICS_KEPT))

    from playground.app import THEME, build_app, page_css

    serving = threading.Event()  # the models load in the background once the page is served
    demo = build_app(warm_after=serving)
    # Gradio's cache (uploads, and every image or file a response returns) is swept every CACHE_SWEEP_SECONDS of
    # files older than CACHE_AGE_SECONDS, so a long-running app's temp folder stays bounded.
    demo.delete_cache = (CACHE_SWEEP_SECONDS, CACHE_AGE_SECONDS)
    print(f"Eager Playground on http://{args.host}:{args.port}", file=sys.stderr)
    demo.queue(default_concurrency_limit=DEFAULT_CONCURRENCY, max_size=QUEUE_SIZE)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth, theme=THEME,
                css=page_css(), show_error=True, max_file_size=MAX_UPLOAD, max_threads=MAX_THREADS,
                prevent_thread_lock=True)
    serving.set()
    demo.block_thread()


if __name__ == "__main__":
    main()
