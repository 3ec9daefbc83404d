"""Hugging Face Space entry point: the app is the ``oldphoto_gradio`` package, nothing else here.

Weights come through oldphoto's resolver (Hub cache, filled at build time by ``preload_from_hub``);
ZeroGPU is handled inside the package (``oldphoto_gradio.gpu``).
"""

try:  # ZeroGPU: `spaces` must be imported before torch initialises CUDA
    import spaces  # noqa: F401
except ImportError:  # any other hardware, or a local run
    pass

from oldphoto_gradio import build_app, launch  # noqa: E402

demo = build_app(preload=True)  # networks load at start-up, not on the first visit

if __name__ == "__main__":
    # host/port None: the Space's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT apply.
    launch(demo, host=None, port=None)
