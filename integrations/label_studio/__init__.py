"""Label Studio: prompts drawn in a project (or none, or a detector's boxes) -> `VideoJob`s; masklets ->
predictions (video tracks, image brush masks); and the ML backend protocol for interactive labeling on
the Serve app.

    schema.py       what the labeling config says (image or video, tag names)
    formats.py      percent / 1-based frames / brush RLE <-> pixels, 0-based frames, bool masks
    prompts.py      tasks -> jobs (which regions, which objects, the media; no regions: every object;
                    rectangles read as unlinked detections)
    predictions.py  masklet store -> prediction JSON (and per-frame review tasks)
    source.py       a project as a JobSource (its tasks' prompts as jobs, the rest rejected with reasons)
    sink.py         a MaskletSink: predictions of one model version, replaced in bulk on close
    review.py       sampled video frames as image tasks of a review project, masks as brushes
    connection.py   the server through label-studio-sdk, with retries and bulk, idempotent writes
    ml_backend.py   /setup, /predict, /webhook for the Serve app; registering it on a project
"""
