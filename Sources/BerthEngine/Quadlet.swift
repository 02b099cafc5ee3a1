#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOS

/// Quadlet (podman-systemd.unit(5)) for berth: a `NAME.container` file
/// becomes `NAME.service`, whose ExecStart is a foreground `berth run`.
/// The [Container] keys berth can honour become run flags; [Unit],
/// [Service], [Install] and other sections are copied, with quadlet's
/// defaults added (Specs/systemd-units.md).
package struct QuadletOptions: Sendable {
    /// For the per-user service manager (no network-online.target).
    package var user = false
    /// Absolute path of the berth the units run.
    package var executable: String
    /// Named in the generated files' first comment.
    package var generator = "berth-generator"

    package init(executable: String, user: Bool = false) {
        self.executable = executable
        self.user = user
    }
}

package enum Quadlet {
    /// A generated service and the links that install it (relative to the output directory).
    package struct Service: Sendable {
        /// `NAME.service`
        package var fileName: String
        package var text: String
        package var links: [Link] = []
    }

    package struct Link: Sendable, Equatable {
        /// Where, relative to the output directory (`default.target.wants/web.service`).
        package var path: String
        /// What it points to, relative to the link's directory.
        package var target: String

        package init(path: String, target: String) {
            self.path = path
            self.target = target
        }
    }

    /// [Container] keys and the run flag each becomes.
    static let stringFlags: [(String, String)] = [
        ("Entrypoint", "--entrypoint"), ("WorkingDir", "--workdir"), ("HostName", "--hostname"), ("IP", "--ip"),
        ("StopSignal", "--stop-signal"), ("StopTimeout", "--stop-timeout"), ("Pull", "--pull"), ("Memory", "--memory"),
        ("PidsLimit", "--pids-limit"), ("UserNS", "--userns"),
    ]
    static let repeatedFlags: [(String, String)] = [
        ("NetworkAlias", "--network-alias"), ("Ulimit", "--ulimit"), ("DNS", "--dns"), ("DNSOption", "--dns-option"),
        ("DNSSearch", "--dns-search"), ("AddHost", "--add-host"), ("Tmpfs", "--tmpfs"),
    ]
    static let healthFlags: [(String, String)] = [
        ("HealthCmd", "cmd"), ("HealthInterval", "interval"), ("HealthRetries", "retries"), ("HealthStartPeriod", "start-period"),
        ("HealthTimeout", "timeout"),
    ]
    static let otherKeys: Set<String> = [
        "AddCapability", "AutoUpdate", "BerthArgs", "CgroupsMode", "ContainerName", "DropCapability", "Environment",
        "EnvironmentFile", "Exec", "ExposeHostPort", "GlobalArgs", "Group", "Image", "Label", "LogDriver", "LogOpt", "Mount",
        "Network", "NoNewPrivileges", "Notify", "PodmanArgs", "PublishPort", "ReadOnly", "ReadOnlyTmpfs", "ReloadCmd",
        "ReloadSignal", "RunInit", "SeccompProfile", "SecurityLabelDisable", "SecurityLabelFileType", "SecurityLabelLevel",
        "SecurityLabelNested", "SecurityLabelType", "User", "Volume",
    ]
    /// The [Container] keys berth takes.
    package static let containerKeys: Set<String> = otherKeys
        .union(stringFlags.map(\.0)).union(repeatedFlags.map(\.0)).union(healthFlags.map(\.0))
    /// podman's keys berth has no equivalent for: named in the error.
    static let podmanOnlyKeys: Set<String> = [
        "AddDevice", "Annotation", "ContainersConfModule", "EnvironmentHost", "GIDMap", "GroupAdd", "HealthLogDestination",
        "HealthMaxLogCount", "HealthMaxLogSize", "HealthOnFailure", "HealthStartupCmd", "HealthStartupInterval",
        "HealthStartupRetries", "HealthStartupSuccess", "HealthStartupTimeout", "IP6", "Mask", "Pod", "RemapGid", "RemapUid",
        "RemapUidSize", "RemapUsers", "Retry", "RetryDelay", "Rootfs", "Secret", "ShmSize", "StartWithPod", "SubGIDMap",
        "SubUIDMap", "Sysctl", "Timezone", "UIDMap", "Unmask", "VolatileTmp",
    ]
    /// podman's other unit types: not berth's.
    package static let podmanOnlyExtensions = [".volume", ".network", ".kube", ".image", ".build", ".pod"]
    static let dependencyKeys: Set<String> = [
        "After", "Before", "BindsTo", "Conflicts", "OnFailure", "OnSuccess", "PartOf", "PropagatesReloadTo", "PropagatesStopTo",
        "ReloadPropagatedFrom", "Requires", "Requisite", "StopPropagatedFrom", "Upholds", "Wants",
    ]

    /// `web.container` → `web.service`.
    package static func serviceName(of fileName: String) -> String {
        (fileName.hasSuffix(".container") ? String(fileName.dropLast(".container".count)) : fileName) + ".service"
    }

    /// The service for the `.container` file `source` (drop-ins merged).
    package static func convert(_ source: UnitFile, options: QuadletOptions) throws(UnitFileError) -> Service {
        let file = source.fileName
        func fail(_ message: String) -> UnitFileError { UnitFileError(path: source.path, line: nil, message) }
        guard let container = source.section("Container") else { throw fail("no [Container] section") }
        for entry in container.entries where !containerKeys.contains(entry.key) {
            if podmanOnlyKeys.contains(entry.key) { throw UnitFileError(entry, "[Container] \(entry.key)= is not supported by berth") }
            throw UnitFileError(entry, "[Container] \(entry.key)= is not a key quadlet knows")
        }
        for entry in source.section("Quadlet")?.entries ?? [] where entry.key != "DefaultDependencies" {
            throw UnitFileError(entry, "[Quadlet] \(entry.key)= is not a key quadlet knows")
        }
        guard let image = source.value("Container", "Image"), !image.value.isEmpty else { throw fail("[Container] has no Image=") }
        for suffix in [".image", ".build"] where image.value.hasSuffix(suffix) {
            throw UnitFileError(image, "Image=\(image.value): berth's generator does not make \(suffix) units")
        }
        let containerName = source.value("Container", "ContainerName").map(\.value).flatMap { $0.isEmpty ? nil : $0 }
            ?? (file.contains("@") ? "systemd-%p_%i" : "systemd-%N")
        let directory = source.path.contains("/") ? String(source.path[..<source.path.lastIndex(of: "/")!]) : "."
        /// quadlet's rule: a relative path is the unit file's, unless it starts with a %specifier.
        func absolute(_ path: String) -> String {
            if path.hasPrefix("/") || (path.hasPrefix("%") && !path.hasPrefix("%%")) { return path }
            return SpecBuilder.clean(directory + "/" + path)
        }

        // The service: the source's sections, [Container] kept as X-Container (systemd ignores X- sections).
        var unit = UnitFile(path: serviceName(of: file))
        for var section in source.sections {
            if section.name == "Container" { section.name = "X-Container" }
            if section.name == "Quadlet" { section.name = "X-Quadlet" }
            if section.name == "Unit" {
                // A dependency on another quadlet unit is on its service.
                for index in section.entries.indices where dependencyKeys.contains(section.entries[index].key) {
                    let words = section.entries[index].value.split(separator: " ").map { word in
                        word.hasSuffix(".container") ? serviceName(of: String(word)) : String(word)
                    }
                    section.entries[index].value = words.joined(separator: " ")
                }
            }
            unit.sections.append(section)
        }
        func sectionIndex(_ name: String) -> Int {
            if let index = unit.sections.firstIndex(where: { $0.name == name }) { return index }
            unit.sections.append(UnitFile.Section(name: name))
            return unit.sections.count - 1
        }
        func add(_ section: String, _ key: String, _ value: String) {
            unit.sections[sectionIndex(section)].entries.append(UnitFile.Entry(key: key, value: value))
        }
        let unitIndex = sectionIndex("Unit")
        if !options.user, try source.bool("Quadlet", "DefaultDependencies") ?? true {
            // The image may have to be pulled, the ports bound: wait for the network.
            unit.sections[unitIndex].entries.insert(contentsOf: [
                UnitFile.Entry(key: "Wants", value: "network-online.target"),
                UnitFile.Entry(key: "After", value: "network-online.target"),
            ], at: 0)
        }
        add("Unit", "SourcePath", source.path)
        add("Unit", "RequiresMountsFor", "%t/berth")

        // [Service]: quadlet's defaults, checked against what the file sets.
        _ = sectionIndex("Service")
        if let killMode = source.value("Service", "KillMode"), killMode.value != "mixed" && killMode.value != "control-group" {
            throw UnitFileError(killMode, "KillMode=\(killMode.value): a container's unit takes mixed or control-group")
        }
        let type = source.value("Service", "Type")
        if let type, type.value != "notify" && type.value != "oneshot" {
            throw UnitFileError(type, "Type=\(type.value): a container's unit takes notify or oneshot")
        }
        let oneshot = type?.value == "oneshot"
        add("Service", "Environment", "BERTH_SYSTEMD_UNIT=%n")
        if source.value("Service", "KillMode") == nil { add("Service", "KillMode", "mixed") }

        let base = [options.executable] + (try source.arguments("Container", "GlobalArgs"))
        // berth was killed (TimeoutStopSec ran out): remove what it left.
        add("Service", "ExecStopPost", "-" + SystemdWords.join(base + ["rm", "-f", "-v", containerName]))
        var reloadCommand: [String]? = nil
        if let entry = source.rawValue("Container", "ReloadCmd") {
            do throws(SystemdWords.SplitError) { reloadCommand = try SystemdWords.split(entry.value) } catch {
                throw UnitFileError(entry, "ReloadCmd=: \(error.message)")
            }
        }
        let reloadSignal = source.value("Container", "ReloadSignal")
        if reloadCommand != nil, let reloadSignal {
            throw UnitFileError(reloadSignal, "ReloadCmd= and ReloadSignal= exclude each other: give one")
        }
        if let reloadCommand { add("Service", "ExecReload", SystemdWords.join(base + ["exec", containerName] + reloadCommand)) }
        if let reloadSignal { add("Service", "ExecReload", SystemdWords.join(base + ["kill", "-s", reloadSignal.value, containerName])) }
        add("Service", "Delegate", "yes")

        // ExecStart: berth run in the foreground, as the service's main process.
        var run = base + ["run", "--name", containerName, "--replace", "--rm"]
        func flag(_ name: String, _ value: String) { run += [name, value] }
        if let driver = source.value("Container", "LogDriver"), !driver.value.isEmpty { flag("--log-driver", driver.value) }
        for option in source.list("Container", "LogOpt") { flag("--log-opt", option) }
        if let mode = source.value("Container", "CgroupsMode"), !mode.value.isEmpty { flag("--cgroups", mode.value) } else { run.append("--cgroups=split") }
        var prefixArguments: [String] = []
        for (key, name) in stringFlags {
            guard let entry = source.value("Container", key), !entry.value.isEmpty else { continue }
            if key == "Entrypoint", entry.value.hasPrefix("[") {
                // podman's JSON form: berth's --entrypoint takes one word, the others go before the arguments.
                guard let words = try? JSONDecoder().decode([String].self, from: Data(entry.value.utf8)), let first = words.first else {
                    throw UnitFileError(entry, "Entrypoint=\(entry.value): expected a path or a JSON array of strings")
                }
                flag(name, first)
                prefixArguments = Array(words.dropFirst())
                continue
            }
            flag(name, entry.value)
        }
        for (key, name) in repeatedFlags {
            for entry in source.values("Container", key) { flag(name, entry.value) }
        }
        if try source.bool("Container", "RunInit") == true { run.append("--init") }
        for entry in source.values("Container", "Network") {
            let name = String(entry.value.split(separator: ":", maxSplits: 1).first ?? "")
            if name.hasSuffix(".network") || name.hasSuffix(".container") {
                throw UnitFileError(entry, "Network=\(entry.value): berth's generator does not link to other quadlet units")
            }
            flag("--network", entry.value)
        }
        if !oneshot {
            // How readiness is told: by berth once the container runs, by the container, or once healthy.
            let notify = source.value("Container", "Notify")
            if notify?.value.lowercased() == "healthy" {
                run.append("--sdnotify=healthy")
            } else if try source.bool("Container", "Notify") == true {
                run.append("--sdnotify=container")
            } else {
                run.append("--sdnotify=conmon")
            }
            add("Service", "Type", "notify")
            add("Service", "NotifyAccess", "all")
        }
        if !source.has("Service", "SyslogIdentifier") { add("Service", "SyslogIdentifier", "%N") }
        if let stopTimeout = source.value("Container", "StopTimeout"), !source.has("Service", "TimeoutStopSec") {
            guard let seconds = Int(stopTimeout.value), seconds >= 0 else {
                throw UnitFileError(stopTimeout, "StopTimeout=\(stopTimeout.value): expected seconds")
            }
            add("Service", "TimeoutStopSec", String(seconds + ContainerService.stopMargin))
        }
        if !source.has("Service", "SuccessExitStatus") {
            // A container ended by its stop signal exits 128+N through berth: a clean stop.
            let signal = source.value("Container", "StopSignal").flatMap { SignalName.parse($0.value) } ?? SIGTERM
            add("Service", "SuccessExitStatus", String(128 + signal))
        }
        if try source.bool("Container", "NoNewPrivileges") == true { run.append("--security-opt=no-new-privileges") }
        if try source.bool("Container", "SecurityLabelDisable") == true { flag("--security-opt", "label=disable") }
        if try source.bool("Container", "SecurityLabelNested") == true { flag("--security-opt", "label=nested") }
        for (key, label) in [("SecurityLabelType", "type"), ("SecurityLabelFileType", "filetype"), ("SecurityLabelLevel", "level")] {
            if let entry = source.value("Container", key), !entry.value.isEmpty { flag("--security-opt", "label=\(label):\(entry.value)") }
        }
        if let profile = source.value("Container", "SeccompProfile") { flag("--security-opt", "seccomp=\(profile.value)") }
        for capability in source.list("Container", "DropCapability") { flag("--cap-drop", capability.lowercased()) }
        for capability in source.list("Container", "AddCapability") { flag("--cap-add", capability.lowercased()) }
        let readOnly = try source.bool("Container", "ReadOnly") ?? false
        if readOnly {
            run.append("--read-only")
            // podman's --read-only-tmpfs (on by default): writable /tmp, /var/tmp and /run.
            if try source.bool("Container", "ReadOnlyTmpfs") ?? true {
                let taken = Set(source.values("Container", "Tmpfs").map { String($0.value.split(separator: ":").first ?? "") }
                    + source.values("Container", "Volume").compactMap { entry in
                        let parts = entry.value.split(separator: ":").map(String.init)
                        return parts.count >= 2 ? parts[1] : parts.first
                    })
                for path in ["/tmp", "/var/tmp", "/run"] where !taken.contains(path) { flag("--tmpfs", path) }
            }
        }
        let user = source.value("Container", "User").flatMap { $0.value.isEmpty ? nil : $0 }
        let group = source.value("Container", "Group").flatMap { $0.value.isEmpty ? nil : $0 }
        if let group, user == nil { throw UnitFileError(group, "Group= needs User=") }
        if let user { flag("--user", user.value + (group.map { ":" + $0.value } ?? "")) }
        for entry in source.values("Container", "Volume") {
            var parts = entry.value.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            if parts.count >= 2 {
                if parts[0].hasSuffix(".volume") {
                    throw UnitFileError(entry, "Volume=\(entry.value): berth's generator does not make .volume units")
                }
                if parts[0].hasPrefix(".") { parts[0] = absolute(parts[0]) }
                if parts[0].hasPrefix("/") { add("Unit", "RequiresMountsFor", parts[0]) }
            }
            flag("-v", parts.joined(separator: ":"))
        }
        if let update = source.value("Container", "AutoUpdate"), !update.value.isEmpty {
            flag("--label", "io.containers.autoupdate=\(update.value)")
        }
        for entry in source.values("Container", "ExposeHostPort") {
            let port = entry.value.trimmed
            guard isPortRange(port) else { throw UnitFileError(entry, "ExposeHostPort=\(port): expected PORT[-END][/tcp|udp]") }
            flag("--expose", port)
        }
        for entry in source.values("Container", "PublishPort") { flag("--publish", entry.value.trimmed) }
        for (key, name) in [("Environment", "--env"), ("Label", "--label")] {
            for entry in source.values("Container", key) {
                do {
                    for assignment in try SystemdWords.split(entry.value) { flag(name, assignment) }
                } catch {
                    throw UnitFileError(entry, "\(key)=: \(error.message)")
                }
            }
        }
        for path in try source.arguments("Container", "EnvironmentFile") { flag("--env-file", absolute(path)) }
        for entry in source.values("Container", "Mount") {
            // A bind's relative source is the unit file's, as for Volume=.
            let fields = entry.value.split(separator: ",").map { field -> String in
                for key in ["source=", "src="] where field.hasPrefix(key) && field.dropFirst(key.count).hasPrefix(".") {
                    return key + absolute(String(field.dropFirst(key.count)))
                }
                return String(field)
            }
            flag("--mount", fields.joined(separator: ","))
        }
        for (key, name) in healthFlags {
            if let entry = source.value("Container", key), !entry.value.isEmpty { flag("--health-\(name)", entry.value) }
        }
        run += try source.arguments("Container", "PodmanArgs")
        run += try source.arguments("Container", "BerthArgs")
        run.append(image.value)
        run += prefixArguments
        if let exec = source.rawValue("Container", "Exec") {
            do { run += try SystemdWords.split(exec.value) } catch { throw UnitFileError(exec, "Exec=: \(error.message)") }
        }
        add("Service", "ExecStart", SystemdWords.join(run))

        let name = serviceName(of: file)
        let header = ["# Automatically generated by \(options.generator) from \(source.path)", "#"]
        return Service(fileName: name, text: unit.render(header: header), links: links(for: name, install: unit))
    }

    static func isPortRange(_ text: String) -> Bool {
        var body = Substring(text)
        if let slash = body.firstIndex(of: "/") {
            guard ["tcp", "udp"].contains(body[body.index(after: slash)...]) else { return false }
            body = body[..<slash]
        }
        let parts = body.split(separator: "-", omittingEmptySubsequences: false)
        return (1...2).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    /// What `systemctl enable` would make from [Install]: Alias=, and
    /// WantedBy=, RequiredBy=, UpheldBy= as `.wants`, `.requires`,
    /// `.upholds` links (a template `x@.service` only with DefaultInstance=).
    package static func links(for serviceFileName: String, install unit: UnitFile) -> [Link] {
        var paths: [String] = unit.list("Install", "Alias").map { SpecBuilder.clean($0).dropFirst().description }
        var enabled = serviceFileName
        if let at = serviceFileName.firstIndex(of: "@"), serviceFileName[serviceFileName.index(after: at)...].hasPrefix(".") {
            if let instance = unit.value("Install", "DefaultInstance"), !instance.value.isEmpty {
                enabled = String(serviceFileName[...at]) + instance.value + ".service"
            } else {
                enabled = ""
            }
        }
        if !enabled.isEmpty {
            for (key, suffix) in [("WantedBy", "wants"), ("RequiredBy", "requires"), ("UpheldBy", "upholds")] {
                for target in unit.list("Install", key) where !target.contains("/") {
                    paths.append("\(target).\(suffix)/\(enabled)")
                }
            }
        }
        return paths.map { path in
            let depth = path.split(separator: "/").count - 1
            return Link(path: path, target: String(repeating: "../", count: depth) + serviceFileName)
        }
    }
}

/// The systemd generator (systemd.generator(7)): finds the `.container`
/// files, writes their services into the generator's output directory and
/// installs them. A bad file is reported and skipped; the others are made.
package struct QuadletGenerator {
    package var options: QuadletOptions
    /// Where the `.container` files are, highest precedence first.
    package var directories: [String]

    package init(options: QuadletOptions, directories: [String]) {
        self.options = options
        self.directories = directories
    }

    /// The search path: `$BERTH_QUADLET_UNIT_DIRS` (colon-separated) if
    /// set; else as root /etc/berth/systemd, as a user
    /// `$XDG_CONFIG_HOME/berth/systemd` (~/.config/berth/systemd), then
    /// podman's directories (/etc/containers/systemd, …/containers/systemd)
    /// unless podman's own generator is installed to read them.
    package static func defaultDirectories(user: Bool, environment: (String) -> String? = { getenv($0).map { String(cString: $0) } })
        -> [String] {
        if let list = environment("BERTH_QUADLET_UNIT_DIRS"), !list.isEmpty {
            return list.split(separator: ":").map(String.init)
        }
        if user {
            var config = environment("XDG_CONFIG_HOME").flatMap { $0.hasPrefix("/") ? $0 : nil }
            if config == nil, let home = environment("HOME"), home.hasPrefix("/") { config = home + "/.config" }
            var result = config.map { [$0 + "/berth/systemd"] } ?? []
            if !Files.exists("/usr/lib/systemd/user-generators/podman-user-generator"), let config {
                result.append(config + "/containers/systemd")
            }
            return result
        }
        var result = ["/etc/berth/systemd"]
        if !Files.exists("/usr/lib/systemd/system-generators/podman-system-generator") { result.append("/etc/containers/systemd") }
        return result
    }

    package struct Result: Sendable {
        package var services: [Quadlet.Service] = []
        /// One line per file skipped (or link not made): `FILE:LINE: why`.
        package var problems: [String] = []
    }

    /// Reads every `.container` file (the first of a name wins) with its
    /// drop-ins and converts it.
    package func generate() -> Result {
        var result = Result()
        var seen = Set<String>()
        var sources: [(path: String, name: String)] = []
        for directory in directories {
            for path in Self.files(under: directory, user: options.user) {
                let name = String(path.split(separator: "/").last ?? "")
                if Quadlet.podmanOnlyExtensions.contains(where: { name.hasSuffix($0) }) {
                    result.problems.append("\(path): berth makes services from .container files only: skipped")
                    continue
                }
                guard name.hasSuffix(".container"), seen.insert(name).inserted else { continue }
                sources.append((path, name))
            }
        }
        for source in sources {
            do throws(UnitFileError) {
                var unit = try UnitFile.load(source.path)
                for dropIn in dropIns(for: source.name) { unit.merge(try UnitFile.load(dropIn)) }
                result.services.append(try Quadlet.convert(unit, options: options))
            } catch {
                result.problems.append(error.description + ": skipped")
            }
        }
        return result
    }

    /// The drop-ins of `name` (`web.container`): `*.conf` in `container.d`,
    /// `PREFIX-.container.d` for each dash prefix, `base@.container.d` for an
    /// instance, then `web.container.d`, in every source directory; a file
    /// name in a more specific directory hides the same name in a broader
    /// one; merged in file-name order.
    func dropIns(for name: String) -> [String] {
        let base = String(name.dropLast(".container".count))
        var dirs = ["container.d"]
        let unitName = String(base.split(separator: "@", maxSplits: 1).first ?? "")
        let dashParts = unitName.split(separator: "-", omittingEmptySubsequences: false)
        if dashParts.count > 1 {
            for count in 1..<dashParts.count { dirs.append(dashParts[..<count].joined(separator: "-") + "-.container.d") }
        }
        if let at = base.firstIndex(of: "@"), base.index(after: at) != base.endIndex {
            dirs.append(String(base[...at]) + ".container.d")
        }
        dirs.append(name + ".d")
        var chosen: [String: String] = [:]
        for dir in dirs.reversed() {
            for directory in directories {
                for file in Files.list(directory + "/" + dir) where file.hasSuffix(".conf") && chosen[file] == nil {
                    chosen[file] = directory + "/" + dir + "/" + file
                }
            }
        }
        return chosen.keys.sorted().map { chosen[$0]! }
    }

    /// The files under `directory` and its subdirectories (not a system
    /// search path's `users`), in name order.
    static func files(under directory: String, user: Bool, depth: Int = 0) -> [String] {
        guard depth < 8 else { return [] }
        let names = Files.list(directory)
        var result: [String] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = directory + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                if name.hasSuffix(".d") || (depth == 0 && !user && name == "users") { continue }
                result += files(under: path, user: user, depth: depth + 1)
            } else if (st.st_mode & S_IFMT) == S_IFREG {
                result.append(path)
            }
        }
        return result
    }

    /// Writes the services and their links into `output` (made if missing).
    package func write(_ result: Result, to output: String) throws(EngineError) -> [String] {
        var problems: [String] = []
        do { try Files.makeDirectories(output) } catch {
            throw EngineError(.failed, "cannot make the output directory \(output): \(error)")
        }
        for service in result.services {
            let path = output + "/" + service.fileName
            do { try Files.writeAtomically(path, Array(service.text.utf8), mode: 0o644) } catch {
                problems.append("\(path): cannot write it: \(error)")
                continue
            }
            for link in service.links {
                let linkPath = output + "/" + link.path
                if let slash = linkPath.lastIndex(of: "/") { try? Files.makeDirectories(String(linkPath[..<slash])) }
                unlink(linkPath)
                if symlink(link.target, linkPath) != 0 {
                    problems.append("\(linkPath): cannot link it to \(link.target): \(String(cString: strerror(errno)))")
                }
            }
        }
        return problems
    }
}
