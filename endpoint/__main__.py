"""Run the merchant endpoint: `python -m endpoint --host 0.0.0.0 --port 8080`.

Connects to Temporal with temporalio.envconfig (TEMPORAL_ADDRESS, ...); PAYMENTS_RESULT_PAGE_URL,
when set, is where customers land after bKash (with ?payment=&outcome=&paymentID=).
"""

import argparse
import asyncio

import uvicorn

from config import connect_temporal, load_settings
from endpoint.app import create_app


async def main(host: str, port: int) -> None:
    settings = load_settings()
    client = await connect_temporal()
    projects = {}
    if settings.monetix:
        projects[settings.monetix.project_id] = settings.monetix.gate.secret_key.get_secret_value()
    app = create_app(client, result_page_url=settings.result_page_url, monetix_projects=projects)
    await uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False)).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="merchant endpoint (bKash returns, callbacks)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
