"""Stand-in until the full WaSender simulator lands: embedded mode serves chatdesk only."""


def embedded_app(*, chatdesk_app, chatdesk_port, simulator_port):
    return chatdesk_app
