"""Talks to a runway model server (or router) over gRPC with Triton's own Python client, unchanged.

Usage: python oip_grpc_client.py HOST:PORT MODEL [UNIT]
Prints one JSON object: what each call returned, for the vitest test to check. With UNIT, every
request carries it in the x-runway-unit metadata (the router's sticky key).
"""
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException


def main() -> None:
    url, model = sys.argv[1], sys.argv[2]
    headers = {"x-runway-unit": sys.argv[3]} if len(sys.argv) > 3 else None
    client = grpcclient.InferenceServerClient(url=url)
    meta = client.get_model_metadata(model, headers=headers, as_json=True)
    report = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model, headers=headers),
        "server_metadata": client.get_server_metadata(as_json=True),
        "model_metadata": meta,
    }
    rows = np.array(
        [[((i * 7 + k * 3) % 10) / 5 - 1 for k in range(8)] for i in range(4)], dtype=np.float32
    )
    report["rows"] = rows.tolist()
    inp = grpcclient.InferInput("features", list(rows.shape), "FP32")
    inp.set_data_from_numpy(rows)
    out = grpcclient.InferRequestedOutput("score")
    result = client.infer(model, [inp], outputs=[out], request_id="py-grpc", headers=headers)
    response = result.get_response(as_json=True)
    report["infer"] = {
        "id": response.get("id"),
        "model_name": response.get("model_name"),
        "score": result.as_numpy("score").tolist(),
    }
    try:
        bad = grpcclient.InferInput("features", [1, 3], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
        client.infer(model, [bad], headers=headers)
        report["bad_request"] = "no error"
    except InferenceServerException as err:
        report["bad_request"] = {"status": err.status(), "message": err.message()}
    try:
        client.is_model_ready("no-such-model")
        report["unknown_model"] = "no error"
    except InferenceServerException as err:
        report["unknown_model"] = {"status": err.status(), "message": err.message()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
