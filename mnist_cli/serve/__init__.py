"""mnist-serve: a local page where you draw a digit and watch why the model decides.

explain.py   the math: each pixel's contribution to a logit, by the model's own backward pass
api.py       the JSON API's answers from one loaded run (pictures in, dicts out)
server.py    the HTTP server (standard library), its limits, and the packaged assets/
assets/      index.html, app.js, style.css: the page, offline, no build step
"""
