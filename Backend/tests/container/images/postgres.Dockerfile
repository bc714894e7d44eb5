# Stand-in for the official postgres:17 image: Debian trixie's PostgreSQL 17 with an entrypoint that keeps
# the official contract (POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB, PGDATA, pg_isready on PATH). Only
# the test machine builds it (images/bases.sh).
FROM agent-backend-base/debian:trixie
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -i 's/^#* *create_main_cluster.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql-17 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && install -d -o postgres -g postgres -m 2775 /var/run/postgresql
ENV PATH=/usr/lib/postgresql/17/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
# the official image's: a fast shutdown that lets clients go
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
