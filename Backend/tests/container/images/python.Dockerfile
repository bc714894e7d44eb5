# Stand-in for python:3.11-slim (Debian bookworm's Python 3.11 with venv, whose ensurepip brings pip into
# every venv), for machines that reach Debian's packages but no image registry. Only the test machine
# builds it (images/bases.sh).
FROM agent-backend-base/debian:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    # the official image lets pip install into the system Python; Debian's refuses (PEP 668) unless told
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
ENV LANG=C.UTF-8
CMD ["python3"]
