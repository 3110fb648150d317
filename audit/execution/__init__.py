"""The execution layer of an audit: prepare -> execute -> summarise -> write.

- `setup`: open the data and the model once (`prepare(config) -> Setup`), for the driver and for
  every remote worker alike;
- `units`: work units (a chunk of images x a group of cells): a worker decodes each image once and
  derives every cell's uint8 network-geometry input from it;
- `local`: the local executor (a process pool with bounded read-ahead; 0 workers: in-process);
- `normalise`: uint8 -> float32 network input in the main process (a lookup table, bit for bit `normalise`);
- `audit/execution/cells.py`: the engine loop over prepared units (normalise, batches per cell, metrics,
  cells saved and dropped as they finish);
- `audit/execution/ray.py`: the same runner inside long-lived Ray actors, a group of cells per call;
- `summary`: cells read back from the store -> summary, bootstrap, verdict;
- `document`: the results document and the files written beside it.
"""
