"""Security groups: the GPU nodes talk freely among themselves (EFA requires it), everything else is
opened port by port. The API port is open only to the load balancer (the front door) and the monitoring
host; no client network reaches it. Between GPU nodes the cluster rule admits everything (EFA needs it),
so there the host firewall (roles/host_firewall) closes the API port to all but those two groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import yaml

SSH_PORT = 22
HTTP_PORT = 80  # the load balancer answers it only with a redirect to HTTPS
HTTPS_PORT = 443
INTERNET = "0.0.0.0/0"
# The exporters' ports are the playbooks' (one definition for the hosts that listen, their firewall and
# these groups).
MONITORING_VARS = Path(__file__).resolve().parents[2] / "playbooks" / "vars" / "monitoring.yml"


@dataclass(frozen=True)
class ExporterPorts:
    node: int  # node_exporter, on every host
    haproxy: int  # HAProxy's Prometheus listener, on the load balancer
    dcgm: int  # NVIDIA's DCGM exporter, on GPU nodes

    @classmethod
    def from_playbooks(cls, path: Path = MONITORING_VARS) -> ExporterPorts:
        values = yaml.safe_load(path.read_text())
        return cls(
            node=int(values["qwen_node_exporter_port"]),
            haproxy=int(values["qwen_haproxy_metrics_port"]),
            dcgm=int(values["qwen_dcgm_exporter_port"]),
        )


@dataclass
class SecurityArgs:
    vpc_id: pulumi.Input[str]
    api_port: int
    admin_cidr: str = ""  # SSH (access ssh) comes only from here
    ssh: bool = False
    load_balancer: bool = False
    client_cidrs: tuple[str, ...] = ()  # who reaches the load balancer's HTTPS (and redirecting HTTP) port
    monitoring: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Group:
    name: str
    group: aws.ec2.SecurityGroup


class ClusterSecurity(pulumi.ComponentResource):
    """cluster_group_id (GPU nodes), and load_balancer_group_id / monitoring_group_id when wanted."""

    def __init__(self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("qwen-infra:security:ClusterSecurity", name, None, opts)
        self._name, self._args = name, args
        cluster = self._group("cluster", "GPU nodes: all traffic within the group (EFA), listed ports else")
        self._rule(cluster, "self-in", "-1", None, source_group=cluster.group.id)
        self._rule(cluster, "self-out", "-1", None, source_group=cluster.group.id, egress=True)
        self._rule(cluster, "internet-out", "-1", None, cidr=INTERNET, egress=True)
        self._admin_ssh(cluster)
        self.cluster_group_id = cluster.group.id
        self.load_balancer_group_id: pulumi.Output[str] | None = None
        self.monitoring_group_id: pulumi.Output[str] | None = None
        balancer: _Group | None = None
        if args.load_balancer:
            balancer = self._group("load-balancer", "load balancer: HTTPS from clients, API on the GPU nodes")
            for index, cidr in enumerate(args.client_cidrs):
                self._rule(balancer, f"https-{index}", "tcp", HTTPS_PORT, cidr=cidr)
                self._rule(balancer, f"http-redirect-{index}", "tcp", HTTP_PORT, cidr=cidr)
            self._rule(balancer, "internet-out", "-1", None, cidr=INTERNET, egress=True)
            self._admin_ssh(balancer)
            self._rule(cluster, "api-from-lb", "tcp", args.api_port, source_group=balancer.group.id)
            self.load_balancer_group_id = balancer.group.id
        if args.monitoring:
            # Prometheus and Alertmanager listen on its private address only: nothing reaches it from
            # outside but the admin's SSH (docs/monitoring.md: an SSH tunnel to their UIs).
            monitor = self._group("monitoring", "monitoring: scrapes the GPU nodes and the load balancer")
            self._rule(monitor, "internet-out", "-1", None, cidr=INTERNET, egress=True)
            self._admin_ssh(monitor)
            exporters = ExporterPorts.from_playbooks()
            for port in (exporters.node, exporters.dcgm, args.api_port):
                self._rule(cluster, f"metrics-{port}", "tcp", port, source_group=monitor.group.id)
            if balancer is not None:
                for port in (exporters.node, exporters.haproxy):
                    self._rule(balancer, f"metrics-{port}", "tcp", port, source_group=monitor.group.id)
            self.monitoring_group_id = monitor.group.id
        self.register_outputs(
            {
                "cluster_group_id": self.cluster_group_id,
                "load_balancer_group_id": self.load_balancer_group_id,
                "monitoring_group_id": self.monitoring_group_id,
            }
        )

    def _group(self, role: str, description: str) -> _Group:
        name = f"{self._name}-{role}"
        group = aws.ec2.SecurityGroup(
            name,
            vpc_id=self._args.vpc_id,
            description=description,
            tags={**self._args.tags, "Name": name},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return _Group(name, group)

    def _admin_ssh(self, group: _Group) -> None:
        # With SSM access there is no SSH port at all: Ansible's SSH goes through Session Manager.
        if self._args.ssh:
            self._rule(group, "ssh-admin", "tcp", SSH_PORT, cidr=self._args.admin_cidr)

    def _rule(
        self,
        group: _Group,
        label: str,
        protocol: str,
        port: int | None,
        *,
        cidr: str | None = None,
        source_group: pulumi.Input[str] | None = None,
        egress: bool = False,
    ) -> None:
        rule = aws.vpc.SecurityGroupEgressRule if egress else aws.vpc.SecurityGroupIngressRule
        rule(
            f"{group.name}-{label}",
            security_group_id=group.group.id,
            ip_protocol=protocol,
            from_port=port,
            to_port=port,
            cidr_ipv4=cidr,
            referenced_security_group_id=source_group,
            tags=self._args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
