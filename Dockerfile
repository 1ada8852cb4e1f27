# Production image: one image, four roles (web, worker, beat, events) chosen by command
# (docker-compose.yml); `make run` does not use it.
FROM python:3.11-slim-bookworm

# Static files are collected below (hashed, compressed); keys are never generated in a
# container (each would get its own, lost with it): SECRET_KEY and DASHBOARD_FERNET_KEY
# come from the environment or the dashboard refuses to start.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=dashboard.settings STATIC_ROOT=/app/staticfiles \
    DASHBOARD_STATIC_COLLECTED=true DASHBOARD_GENERATE_KEYS=false

WORKDIR /app
# git: stacks deployed from a repository (the stacks app runs it as a subprocess).
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
# Install dependencies first so code changes do not bust this layer.
RUN python -c 'import tomllib, subprocess, sys; \
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
subprocess.check_call([sys.executable, "-m", "pip", "install", "--no-cache-dir", *deps])'
# The code only, path by path: not var/ (a `make run`'s database and keys), .env or .venv.
COPY manage.py ./
COPY dashboard ./dashboard
COPY containers ./containers
COPY resources ./resources
COPY logs ./logs
COPY console ./console
COPY api ./api
COPY registries ./registries
COPY alerts ./alerts
COPY monitoring ./monitoring
COPY images ./images
COPY stacks ./stacks
COPY templates ./templates
COPY static ./static
# collectstatic needs settings that load; these throwaway random keys never reach runtime.
RUN SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))') \
    DASHBOARD_FERNET_KEY=$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
    DATABASE_URL=sqlite:////tmp/build.db \
    python manage.py collectstatic --no-input -v 0 \
 && useradd --system --uid 10001 --home /app dockyard && mkdir -p /app/var/spool \
 && chown -R dockyard /app

USER dockyard
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "dashboard.asgi:application"]
