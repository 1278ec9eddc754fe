"""The ``--help`` epilogs of every command: examples, formats and exit statuses (the
statuses themselves are decided in ``_exit.py``)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BATCH_EPILOG",
    "BENCH_EPILOG",
    "CHAT_EPILOG",
    "EXPORT_EPILOG",
    "MAIN_EPILOG",
    "MOCK_EPILOG",
    "MODELS_EPILOG",
]

MAIN_EPILOG: Final = """\
examples:
  reka-async chat "What is the capital of France?"
  reka-async chat --stream --system "Answer in one sentence." "Why is the sky blue?"
  reka-async batch prompts.jsonl -o results.jsonl --concurrency 32
  reka-async batch examples/prompts.jsonl -o results.jsonl --mock   # no key, no network
  reka-async models
  reka-async bench --concurrency 1,4,16 --num-requests 200 --stream --json bench.json
  reka-async mock-server --port 8000

The API key is read from the REKA_API_KEY environment variable (preferred over --api-key,
which other users can see in the process list). --mock runs against a built-in mock server.

exit status: 0 all ok; 1 some requests failed; 2 usage/input error or refusal (output
  locked, input changed); 3 batch stopped: change what the "to continue" line says, then
  resume (bad key, no credits, long server wait, --max-cost spent, usage above the budget's
  bound, error rate); 74 I/O error; 130 SIGINT; 143 SIGTERM.
"""

CHAT_EPILOG: Final = """\
examples:
  reka-async chat "Summarise the plot of Hamlet in two sentences."
  reka-async chat --model reka-core --temperature 0 --max-tokens 200 "Explain TCP slow start."
  reka-async chat --stream --system "You are a terse assistant." "List three prime numbers."
  echo "Translate to German: good morning" | reka-async chat -
  reka-async chat --mock "hi"        # against the built-in mock server

exit status: 0 success; 1 the API returned an error; 2 usage error (e.g. no REKA_API_KEY).
"""

BATCH_EPILOG: Final = """\
input (INPUT, or - for stdin), read lazily line by line:
  JSONL, one request per line, for example
    {"custom_id": "q1", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64}
    {"custom_id": "q2", "prompt": "What is 2 + 2?", "temperature": 0}
  Other keys are chat parameters (max_tokens, temperature, top_p, stop, seed, model, ...);
  "metadata" is echoed into the output record and never sent. OpenAI Batch API lines
  ({"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}) work too.
  The format comes from the extension (.jsonl/.ndjson/.json: JSONL, .txt: one prompt per
  line; stdin: JSONL) or --format, never from the content. Blank lines are skipped. A
  line without custom_id gets "line-N" (N = its 1-based line number), which keeps --resume
  stable.

  A line that cannot become a request (invalid JSON, not an object, no messages/prompt,
  invalid parameters) becomes an error line in OUTPUT naming its line number; the rest runs.
  A custom_id already used by an earlier line of INPUT: the later line becomes an error line
  of type DuplicateCustomId (it is not sent).

output (OUTPUT, JSONL, appended one line per input as each result arrives):
  {"custom_id": "q1", "line": 1, "ok": true,
   "response": {"id": ..., "model": ..., "text": ..., "finish_reason": ..., "responses": [...]},
   "usage": {"input_tokens": ..., "output_tokens": ...}, "latency_s": 0.41, "attempts": 1}
  {"custom_id": "q2", "line": 2, "ok": false,
   "error": {"type": "RateLimitError", "message": ..., "status": 429, "request_id": ...},
   "latency_s": 3.2, "attempts": 3}
  Lines are in completion order, not input order; join on custom_id.

memory: INPUT is streamed and each result is written as it arrives, so memory does not grow
  with the input, except for one set of custom_ids (for duplicates and --resume).

resume: an existing non-empty OUTPUT is never overwritten unless --overwrite is given.
  With --resume, a torn last line (from a crash) is cut off and every custom_id already in
  OUTPUT is skipped; --retry-failed sends again the failures that can change
  (APIConnectionError, APITimeoutError, InternalServerError 5xx, RequestTimeoutError 408,
  ConflictError 409, RateLimitError and InsufficientCreditsError 429, AuthenticationError
  401, PermissionDeniedError 403, APIResponseValidationError, ResponseTooLargeError,
  StreamError, and under --max-cost UnpricedModelError and MediaTokensNeededError, items
  refused unsent for a missing price or media bound), keeping input errors
  (BadRequestError 400, NotFoundError 404, MethodNotAllowedError 405, 413,
  UnprocessableEntityError 422, bad lines, duplicate custom_ids). Records are appended as
  results arrive (a later record of a custom_id supersedes an earlier one) and superseded
  records are compacted away atomically at the end, so after any number of crashes, kills
  and resumes OUTPUT holds each input exactly once.
  Each record stores a hash of its request (model, messages, parameters, dialect, host):
  if an input already answered changed since, --resume refuses (exit 2) before sending
  anything; --rerun-changed sends such inputs again instead.
  One run per OUTPUT: a second run on the same OUTPUT exits 2 (OUTPUT.lock holds its pid).
  The circuit breaker stops the batch (exit 3) when going on cannot help: the key was
  refused (401/403), the account is out of credits, or the server asks for a wait longer
  than the cap; an unknown model fails the lines naming it without sending them.
  --max-error-rate R stops it too (exit 3) once more than R of the last 100 finished
  requests failed, whatever the error (judged once 100 finished; bad lines not counted).

examples:
  reka-async batch examples/prompts.jsonl -o results.jsonl --mock
  reka-async batch prompts.jsonl -o results.jsonl --concurrency 32 --rpm 600 --tpm 200000
  reka-async batch prompts.jsonl -o results.jsonl --resume          # after a crash or Ctrl-C
  reka-async batch prompts.jsonl -o results.jsonl --resume --retry-failed   # after an outage
  cat questions.txt | reka-async batch - --format text -o answers.jsonl --max-tokens 256
  reka-async batch prompts.jsonl -o results.csv --cache cache.db --max-cost 5  # CSV at the end
  reka-async batch prompts.jsonl -o results.jsonl --dry-run   # 3 bodies, tokens, cost

cost: prices per million tokens default to the published ones (reka-flash $0.80/$2.00,
  reka-edge $0.10/$0.10, reka-flash-3 $0.10/$0.20), then /models pricing, then --prices
  FILE. --max-cost caps the whole job (every run of OUTPUT counts): it reserves each
  attempt's bound (input: the request's JSON bytes, --message-overhead per message,
  --media-tokens per media part; output: max_tokens) and stops (exit 3) when the next one
  cannot fit. While the server bills no more than the bound, the budget is never exceeded;
  an answer billed above it stops the batch at once (exit 3).
  A .csv or .parquet OUTPUT is written from the job file NAME.jsonl when the job completes.

exit status: 0 every input succeeded; 1 some inputs failed (see their error lines);
  2 usage or input error, or a refusal (OUTPUT locked by another run, INPUT changed since
  OUTPUT was written); 3 the batch was stopped (bad key, no credits, a server wait above the
  cap, --max-cost spent, usage above the budget's bound, an error rate): the "to continue"
  line says what to change, then resumes (with --retry-failed when items failed for a reason
  to fix); 74 I/O error reading INPUT or writing OUTPUT (the message
  names the path); 130 interrupted (SIGINT); 143 terminated (SIGTERM). Interrupted and
  terminated runs flush what finished and print the summary first; --resume continues them.
  POSIX (Linux, macOS); on Windows there is no OUTPUT lock and SIGTERM is not caught.
"""

EXPORT_EPILOG: Final = """\
columns: custom_id, line, ok, text, finish_reason, model, input_tokens, output_tokens,
  cost_usd, cached, error_type, error_message, error_status, attempts, latency_s, metadata
  (JSON text), request_hash; one row per input (its last record), in input order.

examples:
  reka-async export results.jsonl results.csv
  reka-async export results.jsonl results.parquet      # pip install 'reka-async[parquet]'

exit status: 0 written; 2 usage error (unknown extension, no pyarrow); 74 I/O error.
"""

BENCH_EPILOG: Final = """\
load (one step per value, run in ascending order; several values make a sweep):
  --concurrency 1,16,64   closed loop: that many requests in flight, each sent as one ends
  --rate 5,10,20          open loop: requests per second on a schedule (--arrivals poisson
                          or constant), timed from their scheduled start (no coordinated
                          omission); the report says how far sending fell behind it;
                          --burstiness B: gamma-distributed gaps as vLLM's (1.0: Poisson)
  --duration S            each step sends for S seconds instead of --num-requests requests

metrics per step (latencies in ms: mean, p50, p90, p95, p99, max; TTFT, TPOT, ITL: --stream):
  TTFT  scheduled start to the first answer text (Research: also to the first reasoning)
  TPOT  (last answer event - first answer event) / (output tokens - 1)
  ITL   the gaps between events that carried new text
  E2E   scheduled start to the complete answer
  and requests ok/failed by error type, requests/s, input (estimated) and output (usage)
  tokens/s, goodput under --slo, the client's CPU and event-loop lag (a warning says when
  the client, not the server, is the bottleneck)

output: --json FILE (every step with vLLM's --save-result field names beside ours:
  request_throughput, mean_ttft_ms, p99_itl_ms, ...; docs/guides/bench.md maps them), --requests-out
  FILE (a JSON line per request), --plot DIR; without a terminal, progress lines on stderr.

saturation: the load before the first step whose throughput rose less than 5 % while its
  p50 end-to-end latency rose more than 20 % (or where no request succeeded).

examples:
  reka-async bench --mock --concurrency 4,16 --num-requests 160 --output-tokens 16 --stream
  reka-async bench --base-url http://127.0.0.1:8000/v1 --model reka-flash --stream \\
      --concurrency 1,16,64 --num-requests 640 --json bench.json --plot bench-plots/
  reka-async bench --rate 2,4,8 --arrivals constant --num-requests 100 --stream \\
      --input-tokens normal:512,128 --output-tokens 256 --slo ttft=500ms,e2e=5s

exit status: 0 every request succeeded; 1 some failed (or the warm-up request did); 2 usage
  error; 74 the JSON or plots could not be written; 130 interrupted.
"""

MODELS_EPILOG: Final = """\
examples:
  reka-async models                 # a table: context, max output, modalities, prices
  reka-async models --ids           # the ids alone, one a line (for scripts)
  reka-async models --mock --api openai

exit status: 0 success; 1 the API returned an error; 2 usage error (e.g. no REKA_API_KEY).
"""

MOCK_EPILOG: Final = """\
The server prints "Mock Reka server listening on URL" and runs until Ctrl-C or SIGTERM.
Point a client at it with --base-url URL and any non-empty key. Every other option of
'python -m reka_async.testing' is passed through (its --help describes each):
  replies:     --chunk-latency-ms, --stream-chunks, --sse-done, --native-stream
               {cumulative,delta}, --native-stream-trailer, --reject-tool-role
  models:      --models-shape {list,openai,strings} (default: each caller's shape, the
               OpenAI list to a Bearer token, [{id}] to X-Api-Key alone)
  faults:      --fault-kinds, --seed, --rpm-limit, --rate-limit N/WINDOW, --retry-after
  limiter:     --rate-limit-kind {fixed,sliding,bucket,bare} (what --rate-limit models),
               --token-limit N/WINDOW (the tokens billed, of the same kind)
  auth:        --api-key (the only key accepted; default: any non-empty key)
  generation:  answers paced like an inference server's, run to max_tokens: --ttft-ms,
               --prefill-ms-per-token, --tpot-ms, --capacity (most generations at once;
               the rest queue), --jitter
  event loop:  --no-uvloop

examples:
  reka-async mock-server --port 8000
  reka-async mock-server --port 0 --latency-ms 50 --fault-rate 0.05
  reka-async mock-server --port 8000 --ttft-ms 250 --tpot-ms 10 --capacity 16
  REKA_API_KEY=x reka-async --base-url http://127.0.0.1:8000/v1 chat "hi"
"""
