"""The backend protocol: JSON-RPC 2.0 over stdio with LSP-style `Content-Length` framing.
Mirrors src/core/protocol.ts (method names, error codes, notification shapes).

Requests (client → backend):
    initialize   {}                                  → {version, torch, python, device, cuda, gpus, threads}
    inspect      {modelDir, seqLen?}                 → model shape and parameter counts
    addHead      {modelDir, outDir, labels, seed?}   → a classification project on a pretrained body
    compress     CompressSettings (camelCase)        → the run summary (also written to run.json)
    evaluate     {modelDir, shards, batchSize?}      → {name, value, f1?, count}
    rethreshold  {runDir, keep, budget?, outDir, retuneSteps?} → a new run directory with the pruned model
    predict      {runDir, keep, budget?}             → sizes of the keep-set at that budget + the sweep's metric there
    sweep        {runDir, budgets, evalShards?}      → tradeoff points (also merged into report.json)
    probe        {modelDir, shards, examples?, specialTokenIds?, runDir?} → per layer × head probe figures
    shutdown     {}                                  → null; then the `exit` notification ends the process
Notifications (backend → client):
    progress     {id, runDir, phase, step, total, eta, loss?, kl?, sparsity?, target?, lambda?}
Cancellation: the `$/cancelRequest` notification {id} stops that request within a training step; it answers
with error code REQUEST_CANCELLED and a compress run is marked cancelled.
"""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
USER_ERROR = -32001  # bad input the user can fix; message names the file/setting
REQUEST_CANCELLED = -32800  # LSP's code

METHODS = ("initialize", "inspect", "addHead", "compress", "evaluate", "rethreshold", "predict", "sweep", "probe", "shutdown")
