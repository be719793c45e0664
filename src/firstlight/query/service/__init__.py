"""The public query service for scientists: TAP 1.1 (sync, async UWS jobs, VOSI,
examples), Simple Cone Search, DataLink and file downloads, over FastAPI.

Handlers stay thin; what they say is written by pure modules: ``votable``
and ``formats`` (result documents), ``uws`` (the job state machine and its
XML), ``vosi`` (capabilities, tables, examples), ``params`` (TAP parameters).
"""
