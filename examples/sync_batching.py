"""The batching one-liner on the blocking ``Client`` (scripts and notebooks).

python examples/sync_batching.py --mock
"""

from _support import parse_args, sync_connection

from reka_async import Client

PROMPTS = [f"What is {i} squared?" for i in range(20)]


def main() -> None:
    args = parse_args(__doc__ or "")
    with sync_connection(args) as conn, Client(**conn) as client:
        results = client.batch(PROMPTS, concurrency=8, model="reka-flash")
        print(f"{sum(r.ok for r in results)}/{len(results)} ok; first: {results[0].text!r}")


if __name__ == "__main__":
    main()
