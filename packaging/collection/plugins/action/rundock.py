# -*- coding: utf-8 -*-
# Action plugin of rundock.rundock.rundock: runs the rundock binary module built for the
# target's CPU. A binary module is copied to the target as it is, and one file is one
# architecture, so the collection carries one module per architecture
# (rundock_linux_amd64, rundock_linux_arm64, ...) and this plugin picks the one that matches
# the target: from the gathered facts when there are any, else from `uname -sm` on the
# target (one extra command per task). Everything else - arguments, check mode, diff, become,
# the JSON result - is Ansible's normal module execution (_execute_module).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

# uname -m / ansible_architecture -> GOARCH, where they differ
_ARCHES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def _target(self, task_vars):
        facts = task_vars.get("ansible_facts") or {}
        system = facts.get("system") or task_vars.get("ansible_system")
        machine = facts.get("architecture") or task_vars.get("ansible_architecture")
        if not (system and machine):
            res = self._low_level_execute_command("uname -sm")
            words = to_text(res.get("stdout", "")).split()
            if res.get("rc") != 0 or len(words) != 2:
                raise AnsibleActionFail(
                    "cannot tell the target's architecture: uname -sm gave %r (rc %s, %s)"
                    % (res.get("stdout"), res.get("rc"), to_text(res.get("stderr", "")).strip())
                )
            system, machine = words
        return to_text(system).lower(), to_text(machine)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect

        system, machine = self._target(task_vars)
        goarch = _ARCHES.get(machine, machine)
        collection = self._task.resolved_action.rpartition(".")[0] if self._task.resolved_action else "rundock.rundock"
        module = "%s.rundock_%s_%s" % (collection, system, goarch)
        if not self._shared_loader_obj.module_loader.has_plugin(module):
            raise AnsibleActionFail(
                "this collection has no rundock build for the target's %s/%s (no module %s): "
                "build the collection for it (make collection COLLECTION_ARCHES='amd64 arm64 GOARCH')"
                % (system, machine, module)
            )

        result.update(
            self._execute_module(module_name=module, module_args=self._task.args, task_vars=task_vars)
        )
        result["rundock_module"] = module
        return result
