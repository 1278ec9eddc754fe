"""Quickstart: the vendor's first example, on the blocking ``Client``.

python examples/quickstart.py --mock     # or set REKA_API_KEY and drop --mock
"""

from _support import parse_args, sync_connection

from reka_async import Client


def main() -> None:
    args = parse_args(__doc__ or "")
    with sync_connection(args) as conn, Client(**conn) as client:
        response = client.chat.create(
            messages=[{"role": "user", "content": "What is the fifth prime number?"}],
            model="reka-core",
        )
        # The official SDK's attribute path works unchanged; response.text is the short form.
        print(response.responses[0].message.content)


if __name__ == "__main__":
    main()
