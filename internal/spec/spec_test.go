package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestFromMap_Defaults(t *testing.T) {
	s, err := FromMap(map[string]any{"name": "influxdb", "image": "tutum/influxdb:latest", "announce": "8086"}, "Back-1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := Service{
		State: StateEnabled, Name: "influxdb", Image: "tutum/influxdb:latest",
		Announce: 8086, AnnounceAs: AnnouncePrivate, Port: 8086,
		Hostname: "back-1-influxdb", Pull: PullMissing, StopTimeout: 10, Drain: 30, Wait: true, WaitTimeout: 60,
		Update: UpdateStopFirst,
		Log:    true, LogDir: "/var/log/rundock", LogSize: 1000000, LogCount: 10,
		AnnounceName: "influxdb", Instance: "back-1", Domain: "s.prod.example.com",
		EtcdEndpoints: []string{"http://127.0.0.1:2379"}, TTL: 30, DNSTTL: 30,
		SvDir: "/etc/sv", ServiceDir: "/etc/service", BinDir: "/usr/local/bin",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("FromMap:\n got %+v\nwant %+v", s, want)
	}
}

func TestFromMap_Coerce(t *testing.T) {
	tests := []struct {
		name  string
		in    map[string]any
		check func(Service) bool
	}{
		{"int from string", map[string]any{"port": "8080", "announce": 80}, func(s Service) bool { return s.Port == 8080 && s.Announce == 80 }},
		{"int from JSON float", map[string]any{"announce": float64(8086)}, func(s Service) bool { return s.Announce == 8086 && s.Port == 8086 }},
		{"int with spaces", map[string]any{"stop_timeout": " 20 "}, func(s Service) bool { return s.StopTimeout == 20 }},
		{"bool no", map[string]any{"log": "no"}, func(s Service) bool { return !s.Log }},
		{"bool OFF", map[string]any{"log": "OFF"}, func(s Service) bool { return !s.Log }},
		{"bool 0", map[string]any{"log": "0"}, func(s Service) bool { return !s.Log }},
		{"bool False", map[string]any{"log": "False"}, func(s Service) bool { return !s.Log }},
		{"bool yes", map[string]any{"log": "Yes"}, func(s Service) bool { return s.Log }},
		{"bool typed", map[string]any{"log": false}, func(s Service) bool { return !s.Log }},
		{"bool unset means true", map[string]any{}, func(s Service) bool { return s.Log }},
		{"list from comma string", map[string]any{"ports": "8080:80, 127.0.0.1:9090:90/udp"}, func(s Service) bool {
			return reflect.DeepEqual(s.Ports, []string{"8080:80", "127.0.0.1:9090:90/udp"})
		}},
		{"list from YAML list", map[string]any{"command": []any{"serve", "--port", 8080}}, func(s Service) bool {
			return reflect.DeepEqual(s.Command, []string{"serve", "--port", "8080"})
		}},
		{"command string split like sh", map[string]any{"command": `serve --greeting "hello, world" 'a b'`}, func(s Service) bool {
			return reflect.DeepEqual(s.Command, []string{"serve", "--greeting", "hello, world", "a b"})
		}},
		{"env from map", map[string]any{"env": map[string]any{"A": "x y", "N": 3, "E": nil}}, func(s Service) bool {
			return reflect.DeepEqual(s.Env, map[string]string{"A": "x y", "N": "3", "E": ""})
		}},
		{"env from JSON string", map[string]any{"env": `{"A": "1", "B": "$(no)"}`}, func(s Service) bool {
			return reflect.DeepEqual(s.Env, map[string]string{"A": "1", "B": "$(no)"})
		}},
		{"env from pairs", map[string]any{"env": `A=1 B="x y",C='q' D=`}, func(s Service) bool {
			return reflect.DeepEqual(s.Env, map[string]string{"A": "1", "B": "x y", "C": "q", "D": ""})
		}},
		{"user from int", map[string]any{"user": 1000}, func(s Service) bool { return s.User == "1000" }},
		{"nil is unset", map[string]any{"hostname": nil}, func(s Service) bool { return s.Hostname == "h-web" }},
		{"dns_ttl follows ttl", map[string]any{"ttl": "10"}, func(s Service) bool { return s.TTL == 10 && s.DNSTTL == 10 }},
		{"absent needs no image", map[string]any{"state": "absent", "image": nil}, func(s Service) bool { return s.State == StateAbsent }},
		{"placeholders in args", map[string]any{"args": `-p "${PUBLIC_IP}:80:80" -e X=$ANNOUNCE_IP`}, func(s Service) bool {
			return len(s.ArgWords) == 4 && s.ArgWords[1][0].Var == "PUBLIC_IP" && s.ArgWords[3][1].Var == "ANNOUNCE_IP"
		}},
		{"IPv6 host", map[string]any{"host": "fd00::5", "announce": 8080}, func(s Service) bool { return s.Host == "fd00::5" && s.PublishIPv6() }},
		{"IPv4 host publishes IPv4", map[string]any{"host": "10.0.0.5", "announce": 8080, "announce_as": "public6"}, func(s Service) bool { return !s.PublishIPv6() }},
		{"announce_as private6", map[string]any{"announce": 8080, "announce_as": "private6"}, func(s Service) bool { return s.AnnounceAs == AnnouncePrivate6 && s.PublishIPv6() }},
		{"IPv6 placeholders in args", map[string]any{"args": `-e A=$PUBLIC_IP6 -e B=${PRIVATE_IP6}`}, func(s Service) bool {
			return len(s.ArgWords) == 4 && s.ArgWords[1][1].Var == "PUBLIC_IP6" && s.ArgWords[3][1].Var == "PRIVATE_IP6"
		}},
		{"long default hostname is cut", map[string]any{"name": strings.Repeat("a", 63)}, func(s Service) bool {
			return len(s.Hostname) == 63 && s.Hostname == "h-"+strings.Repeat("a", 61)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]any{"name": "web", "image": "nginx"}
			for k, v := range tt.in {
				m[k] = v
			}
			s, err := FromMap(m, "h")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Errorf("unexpected result: %+v", s)
			}
		})
	}
}

func TestFromMap_Errors(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		kind error
		want []string // substrings of the message: the option and the bad value
	}{
		{"ErrMissingName", map[string]any{"name": nil}, ErrMissing, []string{"option name", "missing"}},
		{"ErrEmptyName", map[string]any{"name": ""}, ErrMissing, []string{"option name"}},
		{"ErrUppercaseName", map[string]any{"name": "Web"}, ErrBadValue, []string{"option name", `"Web"`, `try "web"`}},
		{"ErrSlashName", map[string]any{"name": "a/b"}, ErrBadValue, []string{"option name", `"a/b"`}},
		{"ErrDotDotName", map[string]any{"name": ".."}, ErrBadValue, []string{"option name", `".."`}},
		{"ErrSpaceName", map[string]any{"name": "my web"}, ErrBadValue, []string{"option name", `"my web"`}},
		{"ErrLongName", map[string]any{"name": strings.Repeat("a", 64)}, ErrBadValue, []string{"option name", strings.Repeat("a", 64)}},
		{"ErrDashName", map[string]any{"name": "-web"}, ErrBadValue, []string{"option name", `"-web"`}},
		{"ErrShellName", map[string]any{"name": "web;rm"}, ErrBadValue, []string{"option name", `"web;rm"`}},
		{"ErrNewlineName", map[string]any{"name": "web\nx"}, ErrBadValue, []string{"option name", `"web\nx"`, "control character"}},
		{"ErrMissingImage", map[string]any{"image": nil}, ErrMissing, []string{"option image", "missing"}},
		{"ErrBadImage", map[string]any{"image": "nginx:lat est"}, ErrBadValue, []string{"option image", `"nginx:lat est"`}},
		{"ErrUppercaseImage", map[string]any{"image": "Tutum/InfluxDB:Latest"}, ErrBadValue, []string{"option image", "lowercase", `try "tutum/influxdb:Latest"`}},
		{"ErrFlagImage", map[string]any{"image": "--privileged"}, ErrBadValue, []string{"option image", `"--privileged"`}},
		{"ErrShellImage", map[string]any{"image": "nginx$(id)"}, ErrBadValue, []string{"option image", `"nginx$(id)"`}},
		{"ErrNewlineImage", map[string]any{"image": "nginx\n"}, ErrBadValue, []string{"option image", "control character"}},
		{"ErrPortText", map[string]any{"announce": "80", "port": "abc"}, ErrBadType, []string{`option port: "abc" is not a port number (1-65535)`}},
		{"ErrPortRange", map[string]any{"announce": 70000}, ErrBadValue, []string{"option announce", "70000", "1-65535"}},
		{"ErrPortZero", map[string]any{"announce": "0"}, ErrBadValue, []string{"option announce", `"0"`}},
		{"ErrPortNegative", map[string]any{"announce": -1}, ErrBadValue, []string{"option announce", "-1"}},
		{"ErrPortFloat", map[string]any{"announce": 80.5}, ErrBadValue, []string{"option announce", "80.5"}},
		{"ErrPortBool", map[string]any{"announce": true}, ErrBadType, []string{"option announce", "boolean true"}},
		{"ErrPortWithoutAnnounce", map[string]any{"port": 80}, ErrBadValue, []string{"option port", "without announce"}},
		{"ErrNamedPortName", map[string]any{"announce": 80, "named_ports": map[string]any{"met_rics": 9100}}, ErrBadValue, []string{"option named_ports", `"met_rics" is not a port name`, "RFC 6335"}},
		{"ErrNamedPortNumber", map[string]any{"announce": 80, "named_ports": map[string]any{"metrics": "91OO"}}, ErrBadValue, []string{"option named_ports", `metrics="91OO" is not a port number`}},
		{"ErrNamedPortWithoutAnnounce", map[string]any{"named_ports": map[string]any{"metrics": 9100}}, ErrBadValue, []string{"option named_ports", "without announce"}},
		{"ErrNamedPortStartFirst", map[string]any{"announce": 80, "update": "start-first", "named_ports": map[string]any{"metrics": 9100}}, ErrBadValue, []string{"option named_ports", "start-first", "9100"}},
		{"ErrHost6", map[string]any{"announce": 80, "host6": "10.0.0.6"}, ErrBadValue, []string{"option host6", `"10.0.0.6" is not an IPv6 address`}},
		{"ErrHost6Bracket", map[string]any{"announce": 80, "host6": "[fd00::6]"}, ErrBadValue, []string{"option host6", "without brackets"}},
		{"ErrAnnounceAs6", map[string]any{"announce": 80, "announce_as6": "private"}, ErrBadValue, []string{"option announce_as6", `"private" is not one of public6, private6`}},
		{"ErrDualIPv6Host", map[string]any{"announce": 80, "host": "fd00::5", "host6": "fd00::6"}, ErrBadValue, []string{"option host6", "host is its IPv4 address"}},
		{"ErrDualContainer", map[string]any{"announce": 80, "announce_as": "container", "announce_as6": "private6"}, ErrBadValue, []string{"option announce_as6", "announce_as container"}},
		{"ErrDualStartFirst", map[string]any{"announce": 80, "update": "start-first", "announce_as": "container", "host6": "fd00::6"}, ErrBadValue, []string{"option host6"}},
		{"ErrDualWithoutAnnounce", map[string]any{"host6": "fd00::6"}, ErrBadValue, []string{"option host6", "without announce"}},
		{"ErrTag", map[string]any{"announce": 80, "tags": []any{"Canary!"}}, ErrBadValue, []string{"option tags", `"Canary!" is not a DNS label`}},
		{"ErrTagWithoutAnnounce", map[string]any{"tags": []any{"canary"}}, ErrBadValue, []string{"option tags", "without announce"}},
		{"ErrTTLTooSmall", map[string]any{"ttl": 4}, ErrBadValue, []string{"option ttl", "4", "5-86400"}},
		{"ErrUnknownOption", map[string]any{"imgae": "x"}, ErrUnknownOption, []string{"option imgae", `did you mean "image"`}},
		{"ErrUnknownDash", map[string]any{"announce-as": "public"}, ErrUnknownOption, []string{"announce-as", `did you mean "announce_as"`}},
		{"ErrUnknownFar", map[string]any{"zzzzzzzz": "x"}, ErrUnknownOption, []string{"zzzzzzzz", "is not an option"}},
		{"ErrAnsibleKey", map[string]any{"_ansible_check_mode": false}, ErrUnknownOption, []string{"_ansible_check_mode"}},
		{"ErrUnknownState", map[string]any{"state": "running"}, ErrBadValue, []string{"option state", `"running"`, "present, enabled, disabled or absent"}},
		{"ErrAnnounceAs", map[string]any{"announce_as": "both"}, ErrBadValue, []string{"option announce_as", `"both"`}},
		{"ErrPull", map[string]any{"pull": "sometimes"}, ErrBadValue, []string{"option pull", `"sometimes"`}},
		{"ErrBool", map[string]any{"log": "maybe"}, ErrBadType, []string{"option log", `"maybe"`, "yes/no"}},
		{"ErrStringIsBool", map[string]any{"network": false}, ErrBadType, []string{"option network", "boolean false", "quote"}},
		{"ErrStringIsList", map[string]any{"image": []any{"a"}}, ErrBadType, []string{"option image", "a list"}},
		{"ErrListOfMaps", map[string]any{"volumes": []any{map[string]any{"a": 1}}}, ErrBadType, []string{"option volumes", "item 1"}},
		{"ErrEnvKey", map[string]any{"env": map[string]any{"1A": "x"}}, ErrBadValue, []string{"option env", `"1A"`}},
		{"ErrEnvShellKey", map[string]any{"env": "A;B=1"}, ErrBadValue, []string{"option env", `"A;B"`}},
		{"ErrEnvPairs", map[string]any{"env": "A=1 B"}, ErrBadType, []string{"option env", `"B"`, "KEY=VALUE"}},
		{"ErrEnvJSON", map[string]any{"env": `{"A": 1`}, ErrBadType, []string{"option env", "JSON"}},
		{"ErrEnvNewline", map[string]any{"env": map[string]any{"A": "x\ny"}}, ErrBadValue, []string{"option env", "the value of A", "not shown"}},
		{"ErrEnvList", map[string]any{"env": []any{"A=1"}}, ErrBadType, []string{"option env", "not a map"}},
		{"ErrPublish", map[string]any{"ports": "80"}, ErrBadValue, []string{"option ports", `"80"`}},
		{"ErrPublishRange", map[string]any{"ports": "80:99999"}, ErrBadValue, []string{"option ports", `"99999"`}},
		{"ErrPublishIP", map[string]any{"ports": "1.2.3:80:80"}, ErrBadValue, []string{"option ports", `"1.2.3"`}},
		{"ErrPublishProto", map[string]any{"ports": "80:80/icmp"}, ErrBadValue, []string{"option ports", `"icmp"`}},
		{"ErrPublishShell", map[string]any{"ports": []any{"80:80;id"}}, ErrBadValue, []string{"option ports", `"80:80;id"`}},
		{"ErrVolumeRelative", map[string]any{"volumes": "/srv:data"}, ErrBadValue, []string{"option volumes", `"/srv:data"`}},
		{"ErrVolumeMode", map[string]any{"volumes": "/srv:/data:rx"}, ErrBadValue, []string{"option volumes", `"rx"`}},
		{"ErrVolumeUnclean", map[string]any{"volumes": "/srv/../etc:/data"}, ErrBadValue, []string{"option volumes", `"/srv/../etc"`}},
		{"ErrVolumesFrom", map[string]any{"volumes_from": "data;x"}, ErrBadValue, []string{"option volumes_from", `"data;x"`}},
		{"ErrHost", map[string]any{"host": "10.0.0.256"}, ErrBadValue, []string{"option host", `"10.0.0.256"`}},
		{"ErrHostShell", map[string]any{"host": "$(id)"}, ErrBadValue, []string{"option host", `"$(id)"`}},
		{"ErrHostBracketed6", map[string]any{"host": "[fd00::5]"}, ErrBadValue, []string{"option host", `"[fd00::5]"`, "without brackets"}},
		{"ErrHostZone6", map[string]any{"host": "fe80::1%eth0"}, ErrBadValue, []string{"option host", `"fe80::1%eth0"`}},
		{"ErrAnnounceAs", map[string]any{"announce": 80, "announce_as": "public7"}, ErrBadValue, []string{"option announce_as", `"public7"`, "private6"}},
		{"ErrHostContainer", map[string]any{"host": "10.0.0.5", "announce": 80, "announce_as": "container"}, ErrBadValue, []string{"option host", "announce_as container"}},
		{"ErrNetwork", map[string]any{"network": "net work"}, ErrBadValue, []string{"option network", `"net work"`}},
		{"ErrNetworkFlag", map[string]any{"network": "--privileged"}, ErrBadValue, []string{"option network", `"--privileged"`}},
		{"ErrUser", map[string]any{"user": "root`id`"}, ErrBadValue, []string{"option user", "root`id`"}},
		{"ErrHostname", map[string]any{"hostname": "a_b"}, ErrBadValue, []string{"option hostname", `"a_b"`}},
		{"ErrHostnameShell", map[string]any{"hostname": "$(id)"}, ErrBadValue, []string{"option hostname", `"$(id)"`}},
		{"ErrInterface", map[string]any{"private_interface": "eth0 eth1"}, ErrBadValue, []string{"option private_interface", `"eth0 eth1"`}},
		{"ErrInstance", map[string]any{"instance": "Back_1"}, ErrBadValue, []string{"option instance", `"Back_1"`}},
		{"ErrDomain", map[string]any{"domain": "s.prod..com"}, ErrBadValue, []string{"option domain", `"s.prod..com"`}},
		{"ErrDomainDot", map[string]any{"domain": "example.com."}, ErrBadValue, []string{"option domain", "final dot"}},
		{"ErrDuration", map[string]any{"health_interval": "10"}, ErrBadValue, []string{"option health_interval", `"10"`, "30s"}},
		{"ErrHealthCmdNewline", map[string]any{"health_cmd": "true\ntouch /x"}, ErrBadValue, []string{"option health_cmd", "control character"}},
		{"ErrRelativePath", map[string]any{"log_dir": "var/log"}, ErrBadValue, []string{"option log_dir", `"var/log"`, "absolute"}},
		{"ErrUncleanPath", map[string]any{"sv_dir": "/etc/sv/"}, ErrBadValue, []string{"option sv_dir", `"/etc/sv/"`, `"/etc/sv"`}},
		{"ErrEnvFile", map[string]any{"env_file": "x.env"}, ErrBadValue, []string{"option env_file", `"x.env"`}},
		{"ErrEtcdEndpoint", map[string]any{"etcd_endpoints": "127.0.0.1:2379"}, ErrBadValue, []string{"option etcd_endpoints", `"127.0.0.1:2379"`}},
		{"ErrEtcdEndpointPath", map[string]any{"etcd_endpoints": "http://e:2379/x"}, ErrBadValue, []string{"option etcd_endpoints", `"http://e:2379/x"`}},
		{"ErrCertWithoutKey", map[string]any{"etcd_cert": "/c.pem"}, ErrMissing, []string{"etcd_key", "etcd_cert"}},
		{"ErrPasswordWithoutUser", map[string]any{"etcd_password_file": "/p"}, ErrMissing, []string{"etcd_user"}},
		{"ErrArgsSubst", map[string]any{"args": "-e X=$(touch /tmp/x)"}, ErrBadArgs, []string{"option args", "$(touch /tmp/x)", "command substitution"}},
		{"ErrArgsUnbalanced", map[string]any{"args": `-e "X=1`}, ErrBadArgs, []string{"option args", "column 4", "unbalanced"}},
		{"ErrArgsSemicolon", map[string]any{"args": "-e X=1; id"}, ErrBadArgs, []string{"option args", "column 7"}},
		{"ErrArgsNewline", map[string]any{"args": "-e X=1\nid"}, ErrBadValue, []string{"option args", "control character"}},
		{"ErrArgsDetach", map[string]any{"args": "-d"}, ErrBadArgs, []string{"option args", "-d"}},
		{"ErrArgsIt", map[string]any{"args": "-it"}, ErrBadArgs, []string{"option args", "-it"}},
		{"ErrArgsRestart", map[string]any{"args": "--restart=always"}, ErrBadArgs, []string{"option args", "--restart=always"}},
		{"ErrArgsAnnounceContainer", map[string]any{"announce": 80, "announce_as": "container", "args": "-e A=$ANNOUNCE_IP"}, ErrBadArgs, []string{"option args", "ANNOUNCE_IP", "container"}},
		{"ErrCommandSubst", map[string]any{"command": "sh -c $(id)"}, ErrBadValue, []string{"option command", "$(id)"}},
		{"ErrCommandPlaceholder", map[string]any{"command": "serve $PRIVATE_IP"}, ErrBadValue, []string{"option command", "$PRIVATE_IP", "args"}},
		{"ErrInvalidUTF8", map[string]any{"command": []any{"a\xffb"}}, ErrBadValue, []string{"option command", "UTF-8"}},
		{"ErrUpdate", map[string]any{"update": "blue-green"}, ErrBadValue, []string{"option update", `"blue-green"`, "stop-first, start-first"}},
		{"ErrStartFirstNoAnnounce", map[string]any{"update": "start-first"}, ErrMissing, []string{"option update", "needs announce", "stop-first"}},
		{"ErrStartFirstNoUpdatePort", map[string]any{"update": "start-first", "announce": 8080}, ErrMissing, []string{"option update_port", "8080", "update_port=8081", "announce_as container"}},
		{"ErrStartFirstPorts", map[string]any{"update": "start-first", "announce": 8080, "update_port": 8081, "ports": "127.0.0.1:9000:9000"}, ErrBadValue, []string{"option update", "127.0.0.1:9000:9000", "same host port", "stop-first"}},
		{"ErrStartFirstHostNetwork", map[string]any{"update": "start-first", "announce": 8080, "announce_as": "container", "network": "host"}, ErrBadValue, []string{"option update", `"host"`}},
		{"ErrStartFirstContainerNetwork", map[string]any{"update": "start-first", "announce": 8080, "announce_as": "container", "network": "container:db"}, ErrBadValue, []string{"option update", `"container:db"`}},
		{"ErrStartFirstArgsPublish", map[string]any{"update": "start-first", "announce": 8080, "announce_as": "container", "args": "-p 9000:9000"}, ErrBadArgs, []string{"option update", "-p", "args"}},
		{"ErrStartFirstArgsPublishJoined", map[string]any{"update": "start-first", "announce": 8080, "announce_as": "container", "args": "--publish=$PRIVATE_IP:9000:9000"}, ErrBadArgs, []string{"option update", "--publish=$PRIVATE_IP:9000:9000"}},
		{"ErrStartFirstArgsNetHost", map[string]any{"update": "start-first", "announce": 8080, "announce_as": "container", "args": "--net=host"}, ErrBadArgs, []string{"option update", "--net=host"}},
		{"ErrStartFirstLongInstance", map[string]any{"update": "start-first", "announce": 8080, "announce_as": "container", "instance": strings.Repeat("a", 59)}, ErrBadValue, []string{"option update", strings.Repeat("a", 59) + "-next", "at most 58"}},
		{"ErrUpdatePortStopFirst", map[string]any{"announce": 8080, "update_port": 8081}, ErrBadValue, []string{"option update_port", "8081", "update=start-first"}},
		{"ErrUpdatePortContainer", map[string]any{"update": "start-first", "announce": 8080, "announce_as": "container", "update_port": 8081}, ErrBadValue, []string{"option update_port", "announce_as container"}},
		{"ErrUpdatePortSame", map[string]any{"update": "start-first", "announce": 8080, "update_port": 8080}, ErrBadValue, []string{"option update_port", "8080", "update_port=8081"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]any{"name": "web", "image": "nginx"}
			for k, v := range tt.in {
				if v == nil {
					delete(m, k)
					continue
				}
				m[k] = v
			}
			_, err := FromMap(m, "h")
			if err == nil {
				t.Fatalf("FromMap(%v) succeeded; want an error", tt.in)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// start-first is accepted where two containers can run side by side.
func TestFromMap_StartFirst(t *testing.T) {
	for _, m := range []map[string]any{
		{"update": "start-first", "announce": 8080, "update_port": 8081},
		{"update": "start-first", "announce": 8080, "announce_as": "container"},
		{"update": "start-first", "announce": 8080, "announce_as": "container", "args": "-P --network=bridge -e A=1"},
		{"update": "stop-first", "announce": 8080, "ports": "9000:9000", "network": "host"},
	} {
		m["name"], m["image"] = "web", "nginx"
		s, err := FromMap(m, "h")
		if err != nil {
			t.Errorf("FromMap(%v): %v", m, err)
			continue
		}
		if s.StartFirst() != (m["update"] == UpdateStartFirst) {
			t.Errorf("FromMap(%v): StartFirst() = %v", m, s.StartFirst())
		}
	}
}

func TestFromMap_AllErrorsAtOnce(t *testing.T) {
	_, err := FromMap(map[string]any{"name": "Web", "image": "nginx", "announce": "x", "colour": "red"}, "h")
	for _, w := range []string{"colour", "option announce", "option name"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
	_, err = FromMap(map[string]any{"name": "Web", "image": "Nginx", "hostname": "a b"}, "h")
	for _, w := range []string{"option name", "option image", "option hostname"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	lit := func(s string) Part { return Part{Lit: s} }
	v := func(s string) Part { return Part{Var: s} }
	tests := []struct {
		name string
		in   string
		want []Word
	}{
		{"empty", "", nil},
		{"spaces", "   ", nil},
		{"influxdb", "--volumes-from data.influxdb -p $PRIVATE_IP:8083:8083",
			[]Word{{lit("--volumes-from")}, {lit("data.influxdb")}, {lit("-p")}, {v("PRIVATE_IP"), lit(":8083:8083")}}},
		{"braces", "${PUBLIC_IP}:1:1", []Word{{v("PUBLIC_IP"), lit(":1:1")}}},
		{"double quoted placeholder", `"$ANNOUNCE_IP x"`, []Word{{v("ANNOUNCE_IP"), lit(" x")}}},
		{"single quotes keep everything", `'$(id);|&<>"\'`, []Word{{lit(`$(id);|&<>"\`)}}},
		{"double quotes keep operators", `"a;b|c&d<e>f(g)"`, []Word{{lit("a;b|c&d<e>f(g)")}}},
		{"backslash escapes", `a\ b \$HOME \;`, []Word{{lit("a b")}, {lit("$HOME")}, {lit(";")}}},
		{"backslash in double quotes", `"a\"b\$c\\d\e"`, []Word{{lit(`a"b$c\d\e`)}}},
		{"empty quotes are a word", `'' ""`, []Word{{lit("")}, {lit("")}}},
		{"globs stay literal", `*.go [ab] ?`, []Word{{lit("*.go")}, {lit("[ab]")}, {lit("?")}}},
		{"lone dollar", `$ a$`, []Word{{lit("$")}, {lit("a$")}}},
		{"concatenation", `a'b'"c"$PRIVATE_IP`, []Word{{lit("abc"), v("PRIVATE_IP")}}},
		{"tilde inside", `a~b`, []Word{{lit("a~b")}}},
		{"quoted tilde", `'~'/x`, []Word{{lit("~/x")}}},
		{"hash inside a word", `a#b`, []Word{{lit("a#b")}}},
		{"quoted hash", `'#x'`, []Word{{lit("#x")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitArgs(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitArgs_Errors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"ErrCmdSubst", "-e X=$(touch CANARY)", []string{"$(touch CANARY)", "column 6", "command substitution"}},
		{"ErrBackticks", "`touch CANARY`", []string{"`touch CANARY`", "column 1"}},
		{"ErrCmdSubstInQuotes", `"$(id)"`, []string{"$(id)", "double quotes"}},
		{"ErrArith", "$((1+1))", []string{"$((1+1))", "arithmetic"}},
		{"ErrOtherVar", "$HOME", []string{"$HOME", "variable"}},
		{"ErrOtherVarQuoted", `"$HOME"`, []string{"$HOME"}},
		{"ErrPositional", "$1", []string{"$1"}},
		{"ErrIFS", "a${IFS}b", []string{"${IFS}"}},
		{"ErrDefault", "${PRIVATE_IP:-x}", []string{"${PRIVATE_IP:-x}"}},
		{"ErrLength", "${#PRIVATE_IP}", []string{"${#PRIVATE_IP}"}},
		{"ErrTilde", "~/x", []string{"~/x", "~"}},
		{"ErrSemicolon", "a;touch CANARY", []string{"column 2", ";"}},
		{"ErrPipe", "a|b", []string{"column 2", "|"}},
		{"ErrAmp", "a & b", []string{"column 3", "&"}},
		{"ErrAndAnd", "a&&b", []string{"column 2"}},
		{"ErrRedirect", "a>b", []string{"column 2", ">"}},
		{"ErrRedirectIn", "<b", []string{"column 1"}},
		{"ErrParen", "(a)", []string{"column 1", "("}},
		{"ErrNewline", "a\nb", []string{`"a\nb"`, "control character"}},
		{"ErrTab", "a\tb", []string{"control character"}},
		{"ErrNUL", "a\x00b", []string{"control character"}},
		{"ErrUnbalancedSingle", "a 'b", []string{"column 3", "unbalanced"}},
		{"ErrUnbalancedDouble", `a "b`, []string{"column 3", "unbalanced"}},
		{"ErrComment", "a #b", []string{"#b", "column 3", "comment"}},
		{"ErrTrailingBackslash", `a\`, []string{"backslash"}},
		{"ErrDollarQuote", `$'a'`, []string{"$"}},
		{"ErrDollarDoubleQuote", `$"a"`, []string{"$"}},
		{"ErrProcessSubst", "<(id)", []string{"column 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitArgs(tt.in)
			if err == nil {
				t.Fatalf("SplitArgs(%q) = %q; want an error", tt.in, got)
			}
			if !errors.Is(err, ErrBadArgs) {
				t.Errorf("error %q is not ErrBadArgs", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseYAML(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		names []string
	}{
		{"one map", "name: a\nimage: nginx\n", []string{"a"}},
		{"documents", "name: a\nimage: nginx\n---\nname: b\nimage: nginx\n---\n", []string{"a", "b"}},
		{"list", "- name: a\n  image: nginx\n- name: b\n  state: absent\n", []string{"a", "b"}},
		{"services key", "services:\n  - name: a\n    image: nginx\n    announce: 80\n", []string{"a"}},
		{"comments and empty documents", "# x\n---\n---\nname: a\nimage: nginx\n", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss, err := ParseYAML([]byte(tt.in), "h")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range ss {
				names = append(names, s.Name)
			}
			if !reflect.DeepEqual(names, tt.names) {
				t.Errorf("names %v, want %v", names, tt.names)
			}
		})
	}
}

func TestParseYAML_Errors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		kind error
		want []string
	}{
		{"ErrMalformed", "name: a\nimage: [nginx\n", ErrSyntax, []string{"line 1"}},
		{"ErrMalformedIndent", "name: a\nimage: nginx\n  port: 80\n", ErrSyntax, []string{"line 3"}},
		{"ErrTabs", "name: a\n\timage: nginx\n", ErrSyntax, []string{"line 2"}},
		{"ErrDuplicateKey", "name: a\nimage: x\nname: b\n", ErrSyntax, []string{"line 3", "name"}},
		{"ErrDuplicateName", "- name: a\n  image: nginx\n- name: a\n  image: redis\n", ErrDuplicate, []string{"line 3", `"a"`, "line 1"}},
		{"ErrScalar", "just text\n", ErrSyntax, []string{"line 1"}},
		{"ErrListOfScalars", "- a\n- b\n", ErrSyntax, []string{"line 1"}},
		{"ErrServicesNotList", "services: a\n", ErrSyntax, []string{"line 1", "list"}},
		{"ErrServicesAndMore", "services: []\nname: a\n", ErrSyntax, []string{"line 1"}},
		{"ErrEmpty", "# nothing\n", ErrMissing, []string{"no service"}},
		{"ErrOptionLine", "name: a\nimage: nginx\n\nport: abc\nannounce: 80\n", ErrBadType, []string{"line 4", `option port: "abc" is not a port number`}},
		{"ErrUnknownLine", "- name: a\n  image: nginx\n- name: b\n  image: nginx\n  imgae: x\n", ErrUnknownOption, []string{"line 5", "imgae", `"image"`}},
		{"ErrYAMLBoolNetwork", "name: a\nimage: nginx\nnetwork: false\n", ErrBadType, []string{"line 3", "option network"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tt.in), "h")
			if err == nil {
				t.Fatal("ParseYAML succeeded; want an error")
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidate_HandBuilt(t *testing.T) {
	if _, err := Validate(Service{Name: "web", Image: "nginx", State: StateEnabled}); err == nil {
		t.Fatal("Validate accepted a service without defaults (stop_timeout 0, ttl 0)")
	}
	s, err := FromMap(map[string]any{"name": "web", "image": "nginx", "args": "-e A=1"}, "h")
	if err != nil {
		t.Fatal(err)
	}
	s.ArgWords = nil
	s2, err := Validate(s)
	if err != nil || len(s2.ArgWords) != 2 {
		t.Fatalf("Validate = %+v, %v; want args split into 2 words", s2.ArgWords, err)
	}
	s.Name = "web\ntouch /x"
	if _, err := Validate(s); err == nil {
		t.Fatal("Validate accepted a name with a newline")
	}
}

// TestFromMap_EnvSecretNotEchoed: an env value may be a password; a bad one is named by its
// key, never shown (issue 13: secrets in error messages).
func TestFromMap_EnvSecretNotEchoed(t *testing.T) {
	for _, val := range []any{"hunter2\x00", "hunter2\u202e", []any{"hunter2"}, map[string]any{"hunter2": "x"}} {
		_, err := FromMap(map[string]any{"name": "db", "image": "postgres", "env": map[string]any{"POSTGRES_PASSWORD": val}}, "h")
		if err == nil {
			t.Fatalf("env value %q accepted", val)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the secret: %v", err)
		}
		if !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
			t.Errorf("the error does not name the key: %v", err)
		}
	}
}
