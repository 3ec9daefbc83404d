"""Hugging Face Space entry point: the app is the ``oldphoto_gradio`` package, nothing else here.

Weights come through oldphoto's resolver (Hub cache, filled at build time by ``preload_from_hub``);
ZeroGPU is handled inside the package (``oldphoto_gradio.gpu``).
"""

from oldphoto_gradio import build_app, launch

demo = build_app(preload=True)  # networks load at start-up, not on the first visit

if __name__ == "__main__":
    # host/port None: the Space's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT apply.
    launch(demo, host=None, port=None)
