"""Wires the orchestrator together. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.adapters import saga_store
from orchestrator.adapters.redis_features import RedisFeatures
from orchestrator.domain.engine import RetryPolicy, SagaEngine
from orchestrator.domain.order_workflow import ORDER_WORKFLOW, order_workflow
from orchestrator.domain.workflow import WorkflowRegistry
from orchestrator.entrypoints import api
from orchestrator.service_layer.admission import AdmissionControl
from orchestrator.service_layer.dead_letters import DeadLetters
from orchestrator.service_layer.handlers import install_handlers, parking_hook
from orchestrator.service_layer.intake import IntakeQueue, OrderIntake
from orchestrator.service_layer.operations import Operations
from orchestrator.service_layer.sagas import SagaService, StatusChange
from orchestrator.service_layer.scheduler import Scheduler
from orchestrator.settings import Settings
from orchestrator.workflow_plugins import plugin_workflows
from sagakit.contracts import REGISTRY
from sagakit.messaging.registry import MessageRegistry
from sagakit.ops.auth import FailedLogins
from sagakit.runtime import Service, build_service


def default_workflows(settings: Settings) -> WorkflowRegistry:
    workflows = WorkflowRegistry()
    workflows.register(order_workflow(step_timeout_s=settings.step_timeout_s))
    for definition in plugin_workflows(settings):  # SAGA_WORKFLOWS and entry points
        workflows.register(definition)
    return workflows


def system_topics(settings: Settings, workflows: WorkflowRegistry) -> list[str]:
    """Every topic of the system (prefixed): orders, order events and each workflow's command,
    reply and compensation topics. Their ``.dlq`` topics are the ones operators look at."""
    names = {settings.topics.ORDERS, settings.topics.ORDER_EVENTS, *workflows.reply_topics}
    for definition in workflows:
        for step in definition.steps:
            names.add(step.topic)
            if step.compensation is not None:
                names.add(step.compensation.topic)
    return sorted(settings.topics.name(n) for n in names)


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
    consumed = [topics.orders, *sorted(topics.name(t) for t in workflows.reply_topics)]
    service = build_service(
        settings, registry=registry, topics=consumed if settings.runs_engine else []
    )
    redis = RedisFeatures(
        settings.redis_url.get_secret_value(),
        rate_limit_per_minute=settings.rate_limit_per_minute,
        idempotency_ttl_s=settings.idempotency_ttl_s,
        prefix=settings.kafka_topic_prefix,
    )

    async def push_status(changes: Sequence[StatusChange]) -> None:
        await redis.publish_statuses(
            {
                str(change.order_id): {
                    "order_id": str(change.order_id),
                    "status": change.order_status,
                    "saga_id": str(change.saga_id),
                    "saga_status": change.saga_status,
                    "total": change.total,
                }
                for change in changes
            }
        )

    engine = SagaEngine(
        workflows,
        topics,
        retry=RetryPolicy(
            base_s=settings.compensation_retry_base_s,
            cap_s=settings.compensation_retry_cap_s,
            max_attempts=settings.compensation_max_attempts,
        ),
    )
    sagas = SagaService(engine, on_status_change=push_status)
    intake = OrderIntake(sagas, workflows.latest(workflow_name))
    admission = AdmissionControl(
        lambda: service.database.fetchval(saga_store.COUNT_IN_FLIGHT),
        max_in_flight=settings.max_in_flight,
    )
    service.workers.append(admission.run)  # both roles: the API's 503s, the orders topic's pace
    service.closers.append(redis.close)
    dead_letters = DeadLetters(
        service.uow,
        service.producer,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        source_topics=system_topics(settings, workflows),
        security=settings.kafka_security,
    )
    if settings.runs_engine:
        service.consumer.throttle(topics.orders, admission.room)
        install_handlers(service.consumer, sagas, intake, registry, admission)
        service.consumer.when_handler_fails(parking_hook(sagas, service.uow))
        scheduler = Scheduler(
            sagas,
            service.uow,
            poll_interval_s=settings.scheduler_poll_interval_s,
            batch_size=settings.scheduler_batch_size,
        )
        service.workers.append(scheduler.run)
        # Gauges of the database's state: one role sets them, so a sum over processes is right.
        service.app.state.scrape.add("sagas", Operations(service.uow, sagas).refresh_metrics)
        service.workers.append(dead_letters.run_gauge)
    if settings.serves_api:
        api.install(
            service.app,
            api.ApiContext(
                uow=service.uow,
                sessions=service.session_factory,
                intake=IntakeQueue(
                    intake, service.uow, linger_s=settings.order_intake_linger_ms / 1000
                ),
                sagas=sagas,
                admission=admission,
                redis=redis,
                admin_token=settings.admin_token.get_secret_value(),
                dead_letters=dead_letters,
                failed_logins=FailedLogins.of(settings),
            ),
            max_body_bytes=settings.order_max_body_bytes,
        )
    return service
