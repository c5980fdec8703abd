"""An FTP endpoint whose files never touch the disk: a device uploads readings, the application
reads them from memory (and could hand out files it generates the same way).

    python examples/memory_storage.py    # then: curl -T reading.csv ftp://device:s3cret@localhost:2121/
"""

from __future__ import annotations

import asyncio

from ftpd import ALL_PERMS, Account, Config, Credentials, LoginResult, MemoryFS, Peer, Server

DEVICES = {"device": "s3cret"}  # name -> password, e.g. from the application's settings


class DeviceAuthenticator:
    async def authenticate(self, credentials: Credentials, peer: Peer) -> LoginResult:
        if DEVICES.get(credentials.user) == credentials.password:
            return Account(credentials.user, perms=ALL_PERMS)
        return None


def build(store: MemoryFS, port: int = 2121) -> Server:
    """Each device sees its own directory of the one in-memory store, as its home '/'."""
    config = Config(host="127.0.0.1", port=port)
    return Server(
        config,
        authenticator=DeviceAuthenticator(),
        filesystem=lambda account: store.subtree("/" + account.name),
    )


async def main() -> None:
    store = MemoryFS(max_bytes=64 * 1024 * 1024)  # uploads past 64 MiB in all get 452
    store.write_bytes("/device/config.ini", b"[device]\ninterval = 60\n")  # served to the device
    async with build(store) as server:
        print(f"serving memory on {server.url}")
        while True:
            await asyncio.sleep(5)
            for path, content in store.files("/device").items():
                if content is not None and path.endswith(".csv"):
                    print(path, len(content), "bytes")


if __name__ == "__main__":
    asyncio.run(main())
