# Production image: one image, four roles (web, worker, beat, events) chosen by command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=dashboard.settings STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY pyproject.toml ./
# Install dependencies first so code changes do not bust this layer.
RUN python -c 'import tomllib, subprocess, sys; \
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
subprocess.check_call([sys.executable, "-m", "pip", "install", "--no-cache-dir", *deps])'
COPY . .
# collectstatic needs settings that load; these throwaway values never reach runtime.
RUN DASHBOARD_DEBUG=false SECRET_KEY=build-only-$(date +%s)-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx \
    DASHBOARD_FERNET_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= DATABASE_URL=sqlite:////tmp/build.db \
    python manage.py collectstatic --no-input -v 0 \
 && useradd --system --uid 10001 --home /app dockyard && chown -R dockyard /app

USER dockyard
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "dashboard.asgi:application"]
