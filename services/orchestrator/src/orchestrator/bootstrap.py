"""Wires the orchestrator together. Nothing is built at import time."""

from __future__ import annotations

from typing import Any

from orchestrator.adapters.orm import Order, Saga
from orchestrator.adapters.redis_features import RedisFeatures
from orchestrator.domain.order_workflow import ORDER_WORKFLOW, order_workflow
from orchestrator.domain.workflow import WorkflowRegistry
from orchestrator.entrypoints import api
from orchestrator.service_layer.engine import RetryPolicy, SagaEngine
from orchestrator.service_layer.handlers import make_handlers
from orchestrator.service_layer.intake import OrderIntake
from orchestrator.service_layer.scheduler import Scheduler
from orchestrator.settings import Settings
from orchestrator.workflow_plugins import plugin_workflows
from sagakit.contracts import REGISTRY
from sagakit.messaging.registry import MessageRegistry
from sagakit.runtime import Service, build_service


def default_workflows(settings: Settings) -> WorkflowRegistry:
    workflows = WorkflowRegistry()
    workflows.register(order_workflow(step_timeout_s=settings.step_timeout_s))
    for definition in plugin_workflows(settings):  # SAGA_WORKFLOWS and entry points
        workflows.register(definition)
    return workflows


def bootstrap(
    settings: Settings | None = None,
    *,
    workflows: WorkflowRegistry | None = None,
    workflow_name: str = ORDER_WORKFLOW,
    registry: MessageRegistry = REGISTRY,
) -> Service:
    """The orchestrator. Tests may pass other workflow definitions and message registries."""
    settings = settings or Settings()
    workflows = workflows or default_workflows(settings)
    topics = settings.topics
    service = build_service(
        settings,
        registry=registry,
        topics=[topics.orders, *sorted(topics.name(t) for t in workflows.reply_topics)],
    )
    redis = RedisFeatures(
        settings.redis_url,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        idempotency_ttl_s=settings.idempotency_ttl_s,
        prefix=settings.kafka_topic_prefix,
    )

    async def push_status(order: Order, saga: Saga) -> None:
        body: dict[str, Any] = {
            "order_id": str(order.order_id),
            "status": order.status,
            "saga_id": str(saga.saga_id),
            "saga_status": saga.status,
            "total": order.total,
        }
        await redis.publish_status(str(order.order_id), body)

    engine = SagaEngine(
        workflows,
        topics,
        retry=RetryPolicy(
            base_s=settings.compensation_retry_base_s,
            cap_s=settings.compensation_retry_cap_s,
            max_attempts=settings.compensation_max_attempts,
        ),
        on_status_change=push_status,
    )
    intake = OrderIntake(engine, workflows.latest(workflow_name))
    service.consumer.handle(make_handlers(engine, intake, registry))
    scheduler = Scheduler(
        engine,
        service.uow,
        poll_interval_s=settings.scheduler_poll_interval_s,
        batch_size=settings.scheduler_batch_size,
    )
    service.workers.append(scheduler.run)
    service.closers.append(redis.close)
    api.install(
        service.app,
        api.ApiContext(
            uow=service.uow,
            intake=intake,
            engine=engine,
            redis=redis,
            admin_token=settings.admin_token,
        ),
        max_body_bytes=settings.order_max_body_bytes,
    )
    return service
