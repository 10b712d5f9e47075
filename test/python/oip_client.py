"""Talks to a runway model server with Triton's own Python client, unchanged.

Usage: python oip_client.py HOST:PORT MODEL
Prints one JSON object: what each call returned, for the vitest test to check.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def main() -> None:
    url, model = sys.argv[1], sys.argv[2]
    client = httpclient.InferenceServerClient(url=url)
    report = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "server_metadata": client.get_server_metadata(),
        "model_metadata": client.get_model_metadata(model),
    }
    rows = np.array(
        [[((i * 7 + k * 3) % 10) / 5 - 1 for k in range(8)] for i in range(4)], dtype=np.float32
    )
    report["rows"] = rows.tolist()
    for binary in (False, True):
        inp = httpclient.InferInput("features", list(rows.shape), "FP32")
        inp.set_data_from_numpy(rows, binary_data=binary)
        out = httpclient.InferRequestedOutput("score", binary_data=binary)
        result = client.infer(model, [inp], outputs=[out], request_id="py-%s" % binary)
        key = "binary" if binary else "json"
        report[key] = {
            "id": result.get_response().get("id"),
            "score": result.as_numpy("score").tolist(),
        }
    try:
        bad = httpclient.InferInput("features", [1, 3], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
        client.infer(model, [bad])
        report["bad_request"] = "no error"
    except InferenceServerException as err:
        report["bad_request"] = {"status": err.status(), "message": err.message()}
    report["stats"] = client.get_inference_statistics(model)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
