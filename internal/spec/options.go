package spec

import (
	"math"
	"strconv"

	"github.com/rundock/rundock/internal/defaults"
)

// Defaults other packages show before a spec exists (rundock status). They are the
// declared defaults of sv_dir and service_dir.
const (
	DefaultSvDir      = defaults.SvDir
	DefaultServiceDir = defaults.ServiceDir
)

// optionTable declares every option once. The checks run in this order, so errors about
// several options of one service come out in it; the module documentation lists the
// options in it too.
var optionTable = []Option{
	// The service.
	{Name: "state", Kind: KindString, check: checkState, def: StateEnabled,
		choices: []string{string(StatePresent), string(StateEnabled), string(StateDisabled), string(StateAbsent)},
		help:    "what rundock makes of the service",
		doc: []string{"C(present) installs the tree without linking it; C(enabled) installs it, links it " +
			"into I(service_dir) and waits until runsv supervises it; C(disabled) stops the " +
			"container gracefully and unlinks the service, keeping the tree; C(absent) does " +
			"what C(disabled) does and removes the tree. Logs in I(log_dir) are kept."}},
	{Name: "name", Kind: KindString, check: checkName, required: true,
		help: "service name, a DNS label; the container is named NAME, the tree docker-NAME",
		doc:  []string{"Service name, a DNS label (lowercase a-z, 0-9, C(-), at most 63). The container is named NAME, its tree C(docker-NAME)."}},
	{Name: "image", Kind: KindString, check: checkImage,
		help: "Docker image reference, required unless state is disabled or absent",
		doc:  []string{"Docker image reference. Required unless I(state) is C(disabled) or C(absent)."}},
	{Name: "args", Kind: KindString, parse: splitArgWords, check: checkArgWords,
		help: "free-form docker run arguments, split like sh; $PUBLIC_IP, $PRIVATE_IP, $ANNOUNCE_IP expand at start",
		doc: []string{
			"Free-form C(docker run) arguments, split like sh splits them (quotes honoured, " +
				"unbalanced quotes rejected) and re-emitted word by word, quoted.",
			"Only C($PUBLIC_IP), C($PRIVATE_IP) and C($ANNOUNCE_IP) expand, when the container " +
				"starts; any other expansion or shell operator is rejected. Flags that detach, allocate a TTY " +
				"or that rundock sets itself (C(--detach), C(--restart), C(--name), C(--rm), C(--tty), C(--pull)) are rejected."}},
	{Name: "announce", Kind: KindInt, min: 1, max: 65535, what: "a port number", zeroUnset: true,
		help: "host port published in DNS, and from the container unless announce_as=container",
		doc:  []string{"Host port announced in DNS. Unless I(announce_as=container), the container publishes C(ANNOUNCE_IP:announce:port)."}},
	{Name: "announce_as", Kind: KindString, check: oneOf, def: AnnouncePrivate,
		choices: []string{AnnouncePublic, AnnouncePrivate, AnnounceContainer, AnnouncePublic6, AnnouncePrivate6, AnnounceContainer6},
		help:    "which address is announced",
		doc: []string{"Which address is announced, the host's public or private one, or the container's own.",
			"C(public6) and C(private6) announce the host's IPv6 address instead (the interface of the IPv6 default route; the first ULA C(fd00::/8) address), answered as AAAA, and publish the container on it (C(-p [ADDR]:announce:port)).",
			"C(container6) announces the container's global IPv6 address on I(network) (a Docker network created with C(--ipv6)) with I(port), answered as AAAA."}},
	{Name: "port", Kind: KindInt, min: 1, max: 65535, what: "a port number", zeroUnset: true,
		check: checkPort, derived: "I(announce)",
		help: "container port",
		doc:  []string{"Container port. Only with I(announce)."}},
	{Name: "env", Kind: KindMap, check: checkEnv,
		help: "environment variable K=V",
		doc: []string{"Environment variables. A dict, a JSON object string, or C(K=V K2=V2). In a file for C(rundock apply -f) a number keeps the text it is written as (C(UMASK: 0755) gives C(0755)); in a playbook quote it, since Ansible's YAML reads C(0755) as the octal 493 before rundock sees it.",
			"Values are secret to rundock: they reach the container through a root-only (0600) C(env) file in the service's tree and C(docker run --env-file), never its command line or the C(run) script, and diffs (C(--diff), the module's C(diff), C(--output json)) show C(KEY=(secret)) instead. Ansible itself logs a task's arguments (C(-v), callbacks, the result on failure): set C(no_log: true) on a task that passes secrets. root on the host can still read them (the C(env) file, C(docker inspect))."}},
	{Name: "env_file", Kind: KindList, check: absPaths,
		help: "docker --env-file",
		doc:  []string{"Files passed to C(docker run --env-file), absolute paths."}},

	// Where things are on the host: the logs, the etcd credentials, the trees, the binaries.
	{Name: "log", Kind: KindBool, def: true,
		help: "log with svlogd into log_dir/NAME",
		doc:  []string{"Log the container's output with svlogd into I(log_dir)/NAME (the announcer's into I(log_dir)/NAME.announcer)."}},
	{Name: "log_dir", Kind: KindPath, check: absPaths, def: defaults.LogDir,
		help: "directory of the svlogd logs",
		doc:  []string{"Parent directory of the svlogd directories."}},
	{Name: "log_size", Kind: KindInt, min: 4096, max: math.MaxInt32, what: "a size in bytes", def: 1000000,
		help: "svlogd file size in bytes",
		doc:  []string{"svlogd maximum file size in bytes."}},
	{Name: "log_count", Kind: KindInt, min: 1, max: 1000, what: "a number of files", def: 10,
		help: "svlogd files kept",
		doc:  []string{"svlogd number of files kept."}},
	{Name: "etcd_cacert", Kind: KindPath, check: absPaths,
		help: "CA certificate file for etcd TLS",
		doc:  []string{"CA certificate file for etcd TLS."}},
	{Name: "etcd_cert", Kind: KindPath, check: absPaths,
		help: "client certificate file for etcd TLS",
		doc:  []string{"Client certificate file for etcd TLS. Only with I(etcd_key)."}},
	{Name: "etcd_key", Kind: KindPath, check: absPaths,
		help: "client key file for etcd TLS",
		doc:  []string{"Client key file for etcd TLS. Only with I(etcd_cert)."}},
	{Name: "etcd_password_file", Kind: KindPath, check: absPaths,
		help: "file holding the etcd password",
		doc:  []string{"File holding the etcd password. Only with I(etcd_user)."}},
	{Name: "sv_dir", Kind: KindPath, check: absPaths, def: defaults.SvDir,
		help: "where service trees are written",
		doc:  []string{"Where service trees are written."}},
	{Name: "service_dir", Kind: KindPath, check: absPaths, def: defaults.ServiceDir,
		help: "the directory runsvdir watches",
		doc:  []string{"The directory runsvdir watches."}},
	{Name: "bin_dir", Kind: KindPath, check: absPaths, def: defaults.BinDir,
		help: "where rundock and announcer are installed",
		doc:  []string{"Where the rundock and announcer binaries are installed on the host."}},

	// The container.
	{Name: "ports", Kind: KindList, check: checkPorts,
		help: "extra published port [IP:]HOST:CONTAINER[/proto]",
		doc:  []string{"Extra published ports, C([IP:]HOST:CONTAINER[/tcp|udp]), ports or ranges of one size."}},
	{Name: "volumes", Kind: KindList, check: checkVolumes,
		help: "volume SRC:DST[:MODE]",
		doc:  []string{"Volumes, C(SRC:DST[:MODE]) with SRC an absolute host path or a volume name and an absolute DST."}},
	{Name: "volumes_from", Kind: KindList, check: checkVolumesFrom,
		help: "docker --volumes-from",
		doc:  []string{"Containers to take volumes from, C(CONTAINER[:ro|rw])."}},
	{Name: "network", Kind: KindString, check: checkNetwork,
		help: "docker --network",
		doc:  []string{"C(docker run --network), a network name or C(container:NAME); only C(container:) takes a colon."}},
	{Name: "user", Kind: KindString, check: checkUser,
		help: "docker --user",
		doc:  []string{"C(docker run --user), C(USER[:GROUP]) as names or numeric ids."}},
	{Name: "command", Kind: KindList, coerce: commandWords,
		help: "command word after the image, one word each",
		doc:  []string{"Command words after the image. A string is split like sh splits it, without any expansion."}},
	{Name: "hostname", Kind: KindString, check: checkHostname,
		derived: "C(HOST-NAME), the short host name and I(name) joined by C(-), cut to 63 characters; I(name) alone when the host name is not a DNS label",
		help:    "container hostname",
		doc:     []string{"Container hostname."}},
	{Name: "pull", Kind: KindString, check: oneOf, def: PullMissing,
		choices: []string{PullAlways, PullMissing, PullNever},
		help:    "pull policy, docker run --pull",
		doc:     []string{"Pull policy, C(docker run --pull)."}},
	{Name: "stop_timeout", Kind: KindInt, min: 1, max: 3600, what: "a number of seconds", def: 10,
		help: "seconds docker stop waits before killing",
		doc:  []string{"Seconds C(docker stop) waits before it kills the container."}},
	{Name: "drain", Kind: KindInt, min: 0, max: maxDrain, what: "a number of seconds", derived: "I(dns_ttl) (at most 3600) with I(announce), else 0",
		help: "seconds between withdrawing the record and stopping the container, on every planned stop",
		doc: []string{"Seconds between withdrawing the DNS record and stopping the container, on every planned stop: a restart for a change, I(state=disabled) or C(absent), and a hand-typed C(sv down) or C(sv restart). A crash or C(docker kill) withdraws at once.",
			"The default, I(dns_ttl), is the longest a cache that honours the record's TTL (a resolver, nginx C(valid=), a client) keeps handing out the withdrawn answer; C(rundock upstreams) drops the instance within a second. C(0) stops at once."}},
	{Name: "wait", Kind: KindBool, def: true,
		help: "after a start or restart, wait until the container serves; fail (and roll back) when it does not",
		doc: []string{"After a start or restart, wait until the container runs, is healthy when it has a health check, and (with I(announce)) its record is in etcd, up to I(wait_timeout). When it does not serve in time the task fails, with the container's last log lines and health output, and the previous tree is restored and restarted.",
			"C(false) returns once runit has started the new container."}},
	{Name: "wait_timeout", Kind: KindInt, min: 1, max: 3600, what: "a number of seconds", def: 60,
		help: "seconds to wait for the container to serve",
		doc:  []string{"Seconds I(wait) waits for the container to serve, counted from the start of the new container."}},
	{Name: "update", Kind: KindString, check: oneOf, def: UpdateStopFirst,
		choices: []string{UpdateStopFirst, UpdateStartFirst},
		help:    "how a change that needs a new container replaces the old one: stop-first or start-first",
		doc: []string{"How a change that needs a new container replaces the running one. C(stop-first) drains and stops the old container, then starts the new one: a single instance is unreachable until the new one serves.",
			"C(start-first) starts the new container beside the old one (named C(NAME.next), on a host port of its own), waits until it serves and its own record (instance C(INSTANCE-next)) is in etcd, then drains and stops the old one; runit's C(run) adopts the new container, so one runit service supervises one container again. Consumers that take the port from the record (SRV, C(rundock upstreams)) see no gap; a client that reads only the A record and keeps a fixed port does not follow the port change. When the new container does not serve within I(wait_timeout) it is removed and the old one keeps serving untouched.",
			"Needs I(announce). With I(announce_as) C(public) or C(private), I(update_port) is the second host port (the service alternates between I(announce) and I(update_port)); with C(container) none is needed. Refused with I(ports), a C(-p)/C(--publish) in I(args), and I(network) C(host) or C(container:NAME): two containers cannot hold the same host port."}},
	{Name: "update_port", Kind: KindInt, min: 1, max: 65535, what: "a port number", zeroUnset: true,
		check: checkUpdatePort,
		help:  "second host port for update start-first (announce_as public or private)",
		doc:   []string{"With I(update=start-first) and I(announce_as) C(public) or C(private): the host port the new container publishes while the old one still holds the other. Each update moves the service between I(announce) and I(update_port); the record always carries the port in use."}},
	{Name: "maintenance", Kind: KindBool,
		help: "withdraw the record and keep it withdrawn without stopping the container (left out: unchanged)",
		doc:  []string{"C(true) withdraws the DNS record and keeps it withdrawn, across announcer and host restarts, without stopping the container; C(false) lets the announcer publish it again. Left out, the maintenance mode stays as it is (see C(rundock maint))."}},
	{Name: "maintenance_reason", Kind: KindString,
		help: "why the service is in maintenance, shown by rundock status",
		doc:  []string{"Why the service is in maintenance, shown by C(rundock status); with I(maintenance=true)."}},
	{Name: "health_cmd", Kind: KindString,
		help: "docker --health-cmd",
		doc:  []string{"C(docker run --health-cmd). The C(check) script then also requires C(healthy)."}},
	{Name: "health_interval", Kind: KindString, check: duration,
		help: "docker --health-interval (Go duration)",
		doc:  []string{"C(--health-interval), a Go duration such as C(10s)."}},
	{Name: "health_timeout", Kind: KindString, check: duration,
		help: "docker --health-timeout (Go duration)",
		doc:  []string{"C(--health-timeout), a Go duration."}},
	{Name: "health_start_period", Kind: KindString, check: duration,
		help: "docker --health-start-period (Go duration)",
		doc:  []string{"C(--health-start-period), a Go duration."}},
	{Name: "health_retries", Kind: KindInt, min: 1, max: 1000, what: "a number", zeroUnset: true,
		help: "docker --health-retries",
		doc:  []string{"C(--health-retries)."}},

	// Dependencies on other services of this host.
	{Name: "depends_on", Kind: KindList, parse: parseDependsOn,
		help: "service on this host to wait for before the container starts, NAME[:healthy|started]",
		doc: []string{"Services on this host (their trees in I(sv_dir)) that the container waits for, each C(NAME) or C(NAME:CONDITION): " +
			"C(healthy) (the default) waits until the dependency's runsv runs it and C(sv check) passes (its container runs and, with a health check, is healthy); " +
			"C(started) until its runsv runs it and it waits for nothing itself. A YAML list, or a comma-separated string (C(depends_on=db,cache:started)).",
			"The C(run) script waits up to " + strconv.Itoa(DependsWait) + " seconds for each in turn, logging which; when one is not serving by then it exits and runit starts it again after a short pause, without crash-loop backoff. " +
				"C(rundock apply -f) applies services in dependency order and refuses a cycle; a name with no tree on the host is a warning, not an error."}},

	// The DNS record and the announcer that keeps it.
	{Name: "announce_name", Kind: KindString, check: dnsLabel, derived: "I(name)",
		help: "DNS service name",
		doc:  []string{"DNS service name, a DNS label."}},
	{Name: "instance", Kind: KindString, check: checkInstance, derived: "the short host name, when it is a DNS label (else set it to announce)",
		help: "DNS instance label",
		doc:  []string{"DNS instance label of this host's record."}},
	{Name: "domain", Kind: KindString, check: checkDomain, def: defaults.Domain,
		help: "DNS domain of the records",
		doc:  []string{"DNS domain of the records, without the final dot."}},
	{Name: "etcd_endpoints", Kind: KindList, check: checkEndpoints, def: []string{defaults.EtcdEndpoint},
		help: "etcd endpoint URL, or comma-separated URLs",
		doc:  []string{"etcd endpoints, http(s) URLs; C(https://) when I(etcd_cacert), I(etcd_cert) or I(etcd_user) is set (over C(http://) the client would drop TLS and send the password in clear text)."}},
	{Name: "ttl", Kind: KindInt, min: defaults.MinTTL, max: 86400, what: "a number of seconds", def: defaults.TTL,
		help: "lease TTL in seconds",
		doc:  []string{"Lease TTL in seconds; the record disappears this long after the announcer stops renewing it."}},
	{Name: "dns_ttl", Kind: KindInt, min: 1, max: 86400, what: "a number of seconds", derived: "I(ttl)",
		help: "record ttl field in seconds",
		doc:  []string{"The record's C(ttl) field, the DNS answer TTL."}},
	{Name: "priority", Kind: KindInt, min: 0, max: 65535, what: "a number", zeroUnset: true,
		help: "SRV priority",
		doc:  []string{"SRV priority of the record."}},
	{Name: "weight", Kind: KindInt, min: 0, max: 65535, what: "a number", zeroUnset: true,
		help: "SRV weight",
		doc:  []string{"SRV weight of the record."}},
	{Name: "named_ports", Kind: KindMap, check: checkNamedPorts,
		help: "more host ports announced by name, NAME=PORT (e.g. metrics=9100)",
		doc: []string{"More ports of the instance, announced by name: C(metrics: 9100) answers the SRV query C(_metrics._tcp.NAME.DOMAIN) " +
			"with the instance's address and port 9100 (Prometheus' C(dns_sd_configs) reads it), while C(NAME.DOMAIN) keeps answering the main port only. " +
			"A name is an RFC 6335 service name (lowercase letters, digits, C(-), at most 15, one letter at least). " +
			"The port is a host port the container publishes (see I(ports)), or its own port with I(announce_as=container). Only with I(announce); not with I(update=start-first)."}},
	{Name: "tags", Kind: KindList, check: checkTags,
		help: "tags for the instance's TXT record (with the image), e.g. canary",
		doc: []string{"Tags of the instance, DNS labels. With tags the instance also gets a TXT record " +
			"(C(instance=INSTANCE image=IMAGE tags=a,b), C(dig TXT NAME.DOMAIN)), and C(rundock upstreams) can build an upstream of the tagged instances only (a canary). Only with I(announce)."}},
	{Name: "host", Kind: KindString, check: checkHost,
		help: "address to publish on and announce, instead of the discovered one",
		doc: []string{
			"IPv4 or IPv6 address to publish the container on and announce, instead of the one discovered " +
				"for I(announce_as) C(public), C(private), C(public6) or C(private6) (a NAT or multi-homed host). " +
				"An IPv6 address is written without brackets (C(fd00::5)) and answered as AAAA.",
			"Not with I(announce_as=container)."}},
	{Name: "announce_as6", Kind: KindString, check: checkDual, choices: []string{AnnouncePublic6, AnnouncePrivate6},
		help: "dual stack: also publish on and announce the host's IPv6 address, public6 or private6",
		doc: []string{"Dual stack: besides the IPv4 address of I(announce_as) (C(public) or C(private)) or I(host), also publish the container on the host's IPv6 address " +
			"(C(-p [ADDR]:announce:port)) and announce it, so that C(NAME.DOMAIN) and C(INSTANCE.NAME.DOMAIN) answer both A and AAAA. " +
			"The instance's records are then C(INSTANCE/ipv4) and C(INSTANCE/ipv6) (SRV lists the instance once per family). Only with I(announce); not with I(update=start-first)."}},
	{Name: "host6", Kind: KindString, check: checkDual,
		help: "dual stack: explicit IPv6 address, instead of the one announce_as6 discovers",
		doc:  []string{"Dual stack with an explicit IPv6 address (C(fd00::5), no brackets), instead of the one I(announce_as6) discovers; see I(announce_as6)."}},
	{Name: "public_interface", Kind: KindString, check: iface,
		help: "interface to take the public address from",
		doc:  []string{"Interface to take the public address from (default chosen automatically)."}},
	{Name: "private_interface", Kind: KindString, check: iface,
		help: "interface to take the private address from",
		doc:  []string{"Interface to take the private address from (default chosen automatically)."}},
	{Name: "etcd_user", Kind: KindString, check: checkEtcdUser,
		help: "etcd user name",
		doc:  []string{"etcd user name."}},
}
