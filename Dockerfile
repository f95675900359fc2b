# One image for the web, worker and scheduler processes (see docker-compose.yml).
FROM python:3.11-slim
# Production settings unless told otherwise: DEBUG=0 needs SECRET_KEY, ALLOWED_HOSTS and
# WASENDER_WEBHOOK_SECRET from the environment (.env with docker compose).
ENV DEBUG=0 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 STATIC_ROOT=/srv/chatdesk/static MEDIA_ROOT=/srv/chatdesk/media
WORKDIR /app
COPY . .
RUN pip install . \
 && DEBUG=1 python manage.py collectstatic --noinput \
 && useradd --create-home chatdesk \
 && mkdir -p /srv/chatdesk/media && chown -R chatdesk /srv/chatdesk
USER chatdesk
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "chatdesk.asgi:application"]
