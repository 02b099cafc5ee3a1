import BerthEngine
import BerthOCI
import Testing

@Suite struct UnitFileTests {
    @Test func sectionsKeysContinuationsAndComments() throws {
        let text = """
            # a comment
            ; another
            [Unit]
            Description = two words \\
            # a comment inside the continuation is skipped
              and more
            After=a.service

            [Container]
            Environment=A=1
            Environment=B=2
            [Unit]
            After=b.service
            Empty=
            """
        let file = try UnitFile.parse(text, path: "/x/web.container")
        #expect(file.sections.map(\.name) == ["Unit", "Container"])
        // systemd's way: the backslash becomes a space, the next line is added as it is.
        #expect(file.value("Unit", "Description")?.value == "two words    and more")
        #expect(file.value("Unit", "Description")?.line == 4)
        #expect(file.values("Unit", "After").map(\.value) == ["a.service", "b.service"])
        #expect(file.values("Container", "Environment").map(\.line) == [10, 11])
        #expect(file.value("Unit", "Empty")?.value == "")
        #expect(file.fileName == "web.container")
    }

    @Test func emptyValueResetsAListAndQuotesAreStripped() throws {
        let file = try UnitFile.parse("[S]\nK=a\nK=\nK=b\nQ=\"quoted value\"\n", path: "f")
        #expect(file.values("S", "K").map(\.value) == ["b"])
        #expect(file.value("S", "Q")?.value == "quoted value")
    }

    @Test(arguments: [
        ("[Unit]\nno equals sign\n", "f.container:2: \"no equals sign\" is not a [section], a KEY=VALUE line or a comment"),
        ("Key=before\n[Unit]\n", "f.container:1: Key= comes before any [section]"),
        ("[Unit]\n=value\n", "f.container:2: \"=value\" has no key before the ="),
        ("[Unit\nA=1\n", "f.container:1: \"[Unit\" is not a [section] header"),
        ("[]\n", "f.container:1: \"[]\" is not a [section] header"),
        ("[Unit]\nA=1\n[Bad]x\n", "f.container:3: \"[Bad]x\" is not a [section] header"),
    ])
    func parseErrorsNameTheFileAndLine(text: String, message: String) {
        do {
            _ = try UnitFile.parse(text, path: "f.container")
            Issue.record("parsed: \(text)")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func booleans() throws {
        let file = try UnitFile.parse("[C]\nA=yes\nB=0\nC=On\nD=maybe\n", path: "f")
        #expect(try file.bool("C", "A") == true)
        #expect(try file.bool("C", "B") == false)
        #expect(try file.bool("C", "C") == true)
        #expect(try file.bool("C", "missing") == nil)
        #expect(throws: UnitFileError.self) { try file.bool("C", "D") }
    }
}

@Suite struct SystemdWordsTests {
    @Test(arguments: [
        ("a b  c", ["a", "b", "c"]),
        ("\"b c\" 'd e'", ["b c", "d e"]),
        ("a\"b c\"d", ["ab cd"]),
        ("\"\"", [""]),
        ("\"a\\tb\" \\x41\\101\\u00e9", ["a\tb", "AAé"]),
        ("say\\shi \"q\\\"uote\"", ["say hi", "q\"uote"]),
        ("\"unbalanced end", ["unbalanced end"]),
        ("trailing\\", ["trailing"]),
        ("%N $HOME", ["%N", "$HOME"]),
        ("", []),
    ])
    func split(text: String, words: [String]) throws {
        #expect(try SystemdWords.split(text) == words)
    }

    @Test func badEscapesAreErrorsAndStrvKeepsBackslashes() throws {
        #expect(throws: SystemdWords.SplitError.self) { try SystemdWords.split("a\\qb") }
        #expect(throws: SystemdWords.SplitError.self) { try SystemdWords.split("\\x00") }
        #expect(try SystemdWords.split("a\\qb 'c d'", escapes: false) == ["a\\qb", "c d"])
    }

    @Test func joinQuotesWhatSystemdWouldSplitAndSplitReadsItBack() throws {
        let words = ["/usr/bin/berth", "run", "two words", "quote\"d", "back\\slash", "tab\there", "it's", "%N", "$VAR", ""]
        let line = SystemdWords.join(words)
        #expect(line == "/usr/bin/berth run \"two words\" \"quote\\\"d\" \"back\\\\slash\" \"tab\\there\" \"it's\" %N $VAR \"\"")
        #expect(try SystemdWords.split(line) == words)
        #expect(SystemdWords.joinLiteral(["-e", "A=$5 100%"]) == "-e \"A=$$5 100%%\"")
    }
}

@Suite struct QuadletTests {
    static let options = QuadletOptions(executable: "/usr/bin/berth")

    func convert(_ text: String, path: String = "/etc/berth/systemd/web.container",
                 options: QuadletOptions = QuadletTests.options) throws -> Quadlet.Service {
        try Quadlet.convert(try UnitFile.parse(text, path: path), options: options)
    }

    @Test func aContainerBecomesAServiceWithQuadletsDefaults() throws {
        let service = try convert("""
            [Unit]
            Description=web
            After=db.container

            [Container]
            Image=docker.io/library/busybox
            Exec=httpd -f -p 8080 -h "/srv/my site"
            Environment=A=1 "B=two words"
            PublishPort=8080:8080
            Volume=./site:/srv:ro
            Notify=healthy
            HealthCmd=wget -q -O /dev/null http://127.0.0.1:8080/
            User=www
            Group=www
            AddCapability=CAP_NET_BIND_SERVICE
            BerthArgs=--memory 64m
            PodmanArgs=--pids-limit 100

            [Service]
            Restart=always

            [Install]
            WantedBy=multi-user.target
            """)
        #expect(service.fileName == "web.service")
        #expect(service.text == """
            # Automatically generated by berth-generator from /etc/berth/systemd/web.container
            #

            [Unit]
            Wants=network-online.target
            After=network-online.target
            Description=web
            After=db.service
            SourcePath=/etc/berth/systemd/web.container
            RequiresMountsFor=%t/berth
            RequiresMountsFor=/etc/berth/systemd/site

            [X-Container]
            Image=docker.io/library/busybox
            Exec=httpd -f -p 8080 -h "/srv/my site"
            Environment=A=1 "B=two words"
            PublishPort=8080:8080
            Volume=./site:/srv:ro
            Notify=healthy
            HealthCmd=wget -q -O /dev/null http://127.0.0.1:8080/
            User=www
            Group=www
            AddCapability=CAP_NET_BIND_SERVICE
            BerthArgs=--memory 64m
            PodmanArgs=--pids-limit 100

            [Service]
            Restart=always
            Environment=BERTH_SYSTEMD_UNIT=%n
            KillMode=mixed
            ExecStopPost=-/usr/bin/berth rm -f -v systemd-%N
            Delegate=yes
            Type=notify
            NotifyAccess=all
            SyslogIdentifier=%N
            SuccessExitStatus=143
            ExecStart=/usr/bin/berth run --name systemd-%N --replace --rm --cgroups=split --sdnotify=healthy --cap-add cap_net_bind_service --user www:www -v /etc/berth/systemd/site:/srv:ro --publish 8080:8080 --env A=1 --env "B=two words" --health-cmd "wget -q -O /dev/null http://127.0.0.1:8080/" --pids-limit 100 --memory 64m docker.io/library/busybox httpd -f -p 8080 -h "/srv/my site"

            [Install]
            WantedBy=multi-user.target

            """)
        #expect(service.links == [Quadlet.Link(path: "multi-user.target.wants/web.service", target: "../web.service")])
    }

    @Test func userUnitsOneshotNamesGlobalArgsAndTheReadOnlyTmpfs() throws {
        var options = Self.options
        options.user = true
        let service = try convert("""
            [Container]
            Image=busybox
            ContainerName=job
            GlobalArgs=--root /srv/store
            ReadOnly=true
            Tmpfs=/tmp:size=1m
            Entrypoint=["/bin/sh", "-c"]
            Exec="echo done"
            StopSignal=SIGINT
            StopTimeout=20
            ReloadSignal=SIGHUP
            [Service]
            Type=oneshot
            """, path: "/home/u/.config/berth/systemd/job.container", options: options)
        let lines = service.text.split(separator: "\n").map(String.init)
        #expect(!service.text.contains("network-online.target"))
        #expect(!service.text.contains("--sdnotify") && !lines.contains("Type=notify") && lines.contains("Type=oneshot"))
        #expect(lines.contains("ExecStart=/usr/bin/berth --root /srv/store run --name job --replace --rm --cgroups=split"
            + " --entrypoint /bin/sh --stop-signal SIGINT --stop-timeout 20 --tmpfs /tmp:size=1m --read-only --tmpfs /var/tmp --tmpfs /run busybox -c \"echo done\""))
        #expect(lines.contains("ExecReload=/usr/bin/berth --root /srv/store kill -s SIGHUP job"))
        #expect(lines.contains("ExecStopPost=-/usr/bin/berth --root /srv/store rm -f -v job"))
        #expect(lines.contains("TimeoutStopSec=80") && lines.contains("SuccessExitStatus=130"))
    }

    @Test(arguments: [
        ("[Container]\nImage=busybox\nSecret=token\n", "/q/web.container:3: [Container] Secret= is not supported by berth"),
        ("[Container]\nImage=busybox\nImagee=x\n", "/q/web.container:3: [Container] Imagee= is not a key quadlet knows"),
        ("[Container]\nExec=true\n", "/q/web.container: [Container] has no Image="),
        ("[Unit]\nDescription=x\n", "/q/web.container: no [Container] section"),
        ("[Container]\nImage=busybox\nGroup=wheel\n", "/q/web.container:3: Group= needs User="),
        ("[Container]\nImage=busybox\n[Service]\nKillMode=process\n", "/q/web.container:4: KillMode=process: a container's unit takes mixed or control-group"),
        ("[Container]\nImage=busybox\n[Service]\nType=forking\n", "/q/web.container:4: Type=forking: a container's unit takes notify or oneshot"),
        ("[Container]\nImage=busybox\nReloadCmd=true\nReloadSignal=HUP\n", "/q/web.container:4: ReloadCmd= and ReloadSignal= exclude each other: give one"),
        ("[Container]\nImage=busybox\nReadOnly=perhaps\n", "/q/web.container:3: ReadOnly=perhaps: expected true or false (yes, no, 1, 0, on, off)"),
        ("[Container]\nImage=busybox\nNetwork=backend.network\n", "/q/web.container:3: Network=backend.network: berth's generator does not link to other quadlet units"),
        ("[Container]\nImage=busybox\nVolume=data.volume:/data\n", "/q/web.container:3: Volume=data.volume:/data: berth's generator does not make .volume units"),
        ("[Container]\nImage=busybox\nExec=echo \\q\n", "/q/web.container:3: Exec=: unknown escape \\q"),
        ("[Container]\nImage=busybox\nExposeHostPort=80/sctp\n", "/q/web.container:3: ExposeHostPort=80/sctp: expected PORT[-END][/tcp|udp]"),
        ("[Container]\nImage=busybox\nEntrypoint=[1, 2]\n", "/q/web.container:3: Entrypoint=[1, 2]: expected a path or a JSON array of strings"),
        ("[Container]\nImage=busybox\n[Quadlet]\nDefaultDependencies=no\nOther=1\n", "/q/web.container:5: [Quadlet] Other= is not a key quadlet knows"),
    ])
    func errorsNameTheFileAndLine(text: String, message: String) throws {
        do throws(UnitFileError) {
            _ = try Quadlet.convert(try UnitFile.parse(text, path: "/q/web.container"), options: Self.options)
            Issue.record("converted: \(text)")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func installLinksAsSystemctlEnableMakesThem() throws {
        let install = try UnitFile.parse("""
            [Install]
            WantedBy=default.target multi-user.target
            RequiredBy=web.service
            UpheldBy=up.target
            Alias=other.service
            WantedBy=a/b.target
            """, path: "x")
        #expect(Quadlet.links(for: "db.service", install: install).map(\.path) == [
            "other.service", "default.target.wants/db.service", "multi-user.target.wants/db.service",
            "web.service.requires/db.service", "up.target.upholds/db.service",
        ])
        #expect(Quadlet.links(for: "db.service", install: install).first?.target == "db.service")
        #expect(Quadlet.links(for: "db.service", install: install).last?.target == "../db.service")
        let template = try UnitFile.parse("[Install]\nWantedBy=default.target\n", path: "x")
        #expect(Quadlet.links(for: "sleep@.service", install: template).isEmpty)
        let withDefault = try UnitFile.parse("[Install]\nWantedBy=default.target\nDefaultInstance=100\n", path: "x")
        #expect(Quadlet.links(for: "sleep@.service", install: withDefault)
            == [Quadlet.Link(path: "default.target.wants/sleep@100.service", target: "../sleep@.service")])
        let instance = try convert("[Container]\nImage=busybox\nExec=sleep %i\n", path: "/q/sleep@10.container")
        #expect(instance.fileName == "sleep@10.service")
        #expect(instance.text.contains("run --name systemd-%p_%i "))
    }

    @Test func searchPath() {
        let env: [String: String] = ["HOME": "/home/u"]
        #expect(QuadletGenerator.defaultDirectories(user: true, environment: { env[$0] }).first == "/home/u/.config/berth/systemd")
        let xdg = ["XDG_CONFIG_HOME": "/cfg", "HOME": "/home/u"]
        #expect(QuadletGenerator.defaultDirectories(user: true, environment: { xdg[$0] }).first == "/cfg/berth/systemd")
        #expect(QuadletGenerator.defaultDirectories(user: false, environment: { _ in nil }).first == "/etc/berth/systemd")
        let set = ["BERTH_QUADLET_UNIT_DIRS": "/a:/b"]
        #expect(QuadletGenerator.defaultDirectories(user: false, environment: { set[$0] }) == ["/a", "/b"])
    }
}

@Suite struct ContainerServiceTests {
    static func container() -> Container {
        var config = ContainerConfig()
        config.entrypoint = []
        config.cmd = ["httpd", "-f", "-p", "80"]
        config.env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=0123456789ab", "GREETING=hi there"]
        config.hostname = "0123456789ab"
        config.labels = ["maintainer": "image", "app": "web"]
        config.workingDir = "/srv"
        config.stopTimeout = 5
        config.network = "none"
        config.ports = [PortMapping(hostIP: "127.0.0.1", hostPort: 8080, containerPort: 80, proto: "tcp"),
                        PortMapping(hostIP: "", hostPort: 5353, containerPort: 53, proto: "udp", range: 2)]
        config.mounts = [ContainerMount(type: "bind", source: "/srv/site", destination: "/www", readOnly: true),
                         ContainerMount(type: "volume", source: "abc", destination: "/data", anonymous: true),
                         ContainerMount(type: "volume", source: "cache", destination: "/cache"),
                         ContainerMount(type: "tmpfs", source: "", destination: "/scratch", options: ["size=1m"])]
        config.restartPolicy = RestartPolicy(name: "on-failure", maximumRetryCount: 4)
        return Container(id: "0123456789abcdef" + String(repeating: "0", count: 48), name: "web", created: "", image: "busybox",
                         imageID: "", config: config, state: ContainerState())
    }

    static var image: ImageConfiguration.Config {
        var image = ImageConfiguration.Config()
        image.Cmd = ["sh"]
        image.Labels = ["maintainer": "image"]
        image.Volumes = ["/data": .object([:])]
        return image
    }

    @Test func newUnitRunsTheContainerAnewWithItsFlags() throws {
        var options = ContainerServiceOptions(executable: "/usr/local/bin/berth")
        options.new = true
        options.useName = true
        options.version = "0.1.0"
        options.mountsFor = ["/var/lib/berth", "/run/berth/runtime"]
        let unit = try ContainerService.unit(for: Self.container(), image: Self.image, spec: nil, rootless: false, options: options)
        #expect(unit.fileName == "container-web.service")
        #expect(unit.text == """
            # container-web.service
            # autogenerated by berth 0.1.0

            [Unit]
            Description=berth container-web.service
            Wants=network-online.target
            After=network-online.target
            RequiresMountsFor=/var/lib/berth /run/berth/runtime

            [Service]
            Environment=BERTH_SYSTEMD_UNIT=%n
            Restart=on-failure
            StartLimitBurst=4
            TimeoutStopSec=65
            ExecStart=/usr/local/bin/berth run \\
            \t--rm \\
            \t--replace \\
            \t--name web \\
            \t--sdnotify=conmon \\
            \t--cgroups=split \\
            \t-e "GREETING=hi there" \\
            \t-w /srv \\
            \t-l app=web \\
            \t--stop-timeout 5 \\
            \t--network none \\
            \t-p 127.0.0.1:8080:80 \\
            \t-p 5353-5354:53-54/udp \\
            \t-v /srv/site:/www:ro \\
            \t-v cache:/cache \\
            \t--tmpfs /scratch:size=1m \\
            \tbusybox httpd -f -p 80
            ExecStopPost=-/usr/local/bin/berth rm -f -v web
            SuccessExitStatus=143
            Type=notify
            NotifyAccess=all
            Delegate=yes
            KillMode=mixed

            [Install]
            WantedBy=default.target

            """)
    }

    @Test func existingContainerUnitStartsAndStopsIt() throws {
        var options = ContainerServiceOptions(executable: "/usr/local/bin/berth")
        options.header = false
        options.restartPolicy = "always"
        options.stopTimeout = 2
        options.globalArguments = ["--root", "/s"]
        let unit = try ContainerService.unit(for: Self.container(), image: Self.image, spec: nil, rootless: false, options: options)
        let id = Self.container().id
        #expect(unit.fileName == "container-\(id).service")
        let lines = unit.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "# container-\(id).service" && lines[1] == "")
        #expect(lines.contains("ExecStart=/usr/local/bin/berth --root /s start -a \(id)"))
        #expect(lines.contains("ExecStop=/usr/local/bin/berth --root /s stop -t 2 \(id)"))
        #expect(lines.contains("Restart=always") && !lines.contains { $0.hasPrefix("StartLimitBurst") })
        #expect(lines.contains("TimeoutStopSec=62") && lines.contains("Type=simple") && !lines.contains("Delegate=yes"))
    }

    @Test func refusals() {
        var options = ContainerServiceOptions(executable: "/b")
        options.restartPolicy = "sometimes"
        #expect(throws: EngineError.self) {
            try ContainerService.unit(for: Self.container(), image: nil, spec: nil, rootless: false, options: options)
        }
        var removed = Self.container()
        removed.config.autoRemove = true
        #expect(throws: EngineError.self) {
            try ContainerService.unit(for: removed, image: nil, spec: nil, rootless: false, options: ContainerServiceOptions(executable: "/b"))
        }
    }

    @Test func theCommandAndEntrypointComeBackAsRunTakesThem() {
        var container = Self.container()
        container.config.cmd = ["sh"]
        #expect(ContainerRunFlags.arguments(container, image: Self.image, spec: nil, rootless: false).trailing == ["busybox"])
        container.config.entrypoint = ["/bin/tini", "--"]
        container.config.cmd = ["serve"]
        let flags = ContainerRunFlags.arguments(container, image: Self.image, spec: nil, rootless: false)
        #expect(flags.groups.first == ["--entrypoint", "/bin/tini"])
        #expect(flags.trailing == ["busybox", "--", "serve"])
        container.config.entrypoint = []
        container.config.cmd = []
        #expect(ContainerRunFlags.arguments(container, image: Self.image, spec: nil, rootless: false).groups.first == ["--entrypoint="])
    }
}
