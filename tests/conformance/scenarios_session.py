"""Scenarios about the session: login, syntax, transfer parameters, network set-up, ABOR.

Every scenario starts in a fresh copy of ``harness.BASE_TREE`` at ``/<id>``; ``{id}`` in a command
stands for that directory. ``login=""`` scenarios drive the login themselves.
"""

from __future__ import annotations

from .harness import Cmd, During, Scenario, Wait, Xfer

S = Scenario
C = Cmd


def _login(user: str = "user", password: str = "12345") -> tuple[Cmd, Cmd]:
    return C(f"USER {user}"), C(f"PASS {password}")


LOGIN = [
    S("login-ok", (*_login(), C("PWD"), C("NOOP")), login=""),
    S(
        "login-bad-password",
        (C("USER user"), C("PASS wrong"), C("PWD"), *_login(), C("PWD")),
        login="",
    ),
    S("login-unknown-user", (C("USER nobody"), C("PASS 12345"), C("PWD")), login=""),
    S("login-pass-without-user", (C("PASS 12345"), C("PWD"), *_login(), C("PWD")), login=""),
    S("login-pass-after-login", (*_login(), C("PASS 12345"), C("PWD")), login=""),
    S("login-user-no-arg", (C("USER"), *_login()), login=""),
    S(
        "login-max-attempts",
        (
            C("USER user"),
            C("PASS a"),
            C("USER user"),
            C("PASS b"),
            C("USER user"),
            C("PASS c"),
            C("NOOP"),
        ),
        login="",
    ),
    S(
        "login-anonymous",
        (
            C("USER anonymous"),
            C("PASS guest@example.com"),
            C("PWD"),
            C("CWD /{id}"),
            Xfer("RETR a.txt"),
            Xfer("LIST"),
            Xfer("STOR new.txt", upload=b"x"),
            C("MKD d"),
            C("DELE a.txt"),
            C("RNFR a.txt"),
            C("SITE CHMOD 600 a.txt"),
            C("MFMT 20200101000000 a.txt"),
            Xfer("APPE a.txt", upload=b"y"),
            C("RMD emptydir"),
        ),
        login="",
    ),
    S(
        "login-anonymous-read-only",
        (
            Xfer("MLSD"),
            C("MLST a.txt"),
            C("TYPE I"),
            C("SIZE bin.dat"),
            Xfer("RETR bin.dat", "EPSV"),
            Xfer("STOU", upload=b"u"),
            Xfer("STOR sub/x.txt", upload=b"x"),
            C("RNFR sub"),
            C("XMKD d"),
            C("XRMD sub/deeper"),
            C("CWD sub"),
            C("PWD"),
        ),
        login="anonymous",
    ),
    S("login-anonymous-no-password", (C("USER anonymous"), C("PASS"), C("PWD")), login=""),
    S("login-anonymous-name-ftp", (C("USER ftp"), C("PASS x"), C("PWD")), login=""),
    S(
        "login-user-relogin",
        (C("CWD sub"), C("TYPE I"), C("USER user"), C("PWD"), C("PASS 12345"), C("PWD")),
    ),
    S(
        "login-rein",
        (
            C("CWD sub"),
            C("REIN"),
            C("PWD"),
            C("CWD /{id}"),
            *_login(),
            C("PWD"),
            C("CWD /{id}"),
            C("SIZE a.txt"),
        ),
    ),
    S("login-rein-not-logged-in", (C("REIN"), *_login(), C("PWD")), login=""),
    S(
        "login-commands-need-login",
        (
            C("PWD"),
            C("CWD /"),
            C("CDUP"),
            C("MKD x"),
            C("RMD x"),
            C("DELE x"),
            C("RNFR x"),
            C("RNTO x"),
            C("RETR x"),
            C("STOR x"),
            C("APPE x"),
            C("STOU"),
            C("LIST"),
            C("NLST"),
            C("MLSD"),
            C("MLST"),
            C("SIZE x"),
            C("MDTM x"),
            C("MFMT 20200101000000 x"),
            C("TYPE I"),
            C("MODE S"),
            C("STRU F"),
            C("REST 0"),
            C("ALLO 10"),
            C("PASV"),
            C("EPSV"),
            C("PORT 127,0,0,1,200,1"),
            C("EPRT |1|127.0.0.1|51201|"),
            C("ABOR"),
            C("STAT /"),
            C("SITE CHMOD 600 x"),
            C("XPWD"),
            C("XCUP"),
        ),
        login="",
    ),
    S(
        "login-allowed-before-login",
        (C("NOOP"), C("SYST"), C("HELP"), C("HELP NOOP"), C("STAT"), C("SITE HELP"), *_login()),
        login="",
    ),
    S("login-feat-before-login", (C("FEAT"), *_login()), login=""),
    S("login-opts-utf8-before-login", (C("OPTS UTF8 ON"), *_login(), C("OPTS UTF8 ON")), login=""),
    S("login-host-before-user", (C("HOST localhost"), *_login(), C("PWD")), login=""),
    S("login-host-after-login", (C("HOST localhost"), C("PWD"))),
    S("login-clnt", (C("CLNT curl 8.5"), *_login()), login=""),
    S("login-auth-tls-without-tls", (C("AUTH TLS"), C("PBSZ 0"), C("PROT P"), *_login()), login=""),
    S("login-quit", (C("QUIT"), C("NOOP")), login=""),
]

SYNTAX = [
    S(
        "syntax-missing-argument",
        tuple(
            C(v)
            for v in (
                "RETR",
                "STOR",
                "APPE",
                "DELE",
                "RMD",
                "MKD",
                "RNFR",
                "SIZE",
                "MDTM",
                "MFMT",
                "TYPE",
                "STRU",
                "MODE",
                "PORT",
                "EPRT",
                "REST",
                "ALLO",
                "SITE",
                "OPTS",
                "XMKD",
                "XRMD",
                "SITE CHMOD",
            )
        ),
    ),
    S(
        "syntax-unexpected-argument",
        tuple(
            C(v)
            for v in (
                "ABOR x",
                "CDUP x",
                "FEAT x",
                "NOOP x",
                "PASV x",
                "PWD x",
                "SYST x",
                "XCUP x",
                "XPWD x",
                "REIN x",
                "QUIT x",
            )
        ),
    ),
    S("syntax-unknown-command", (C("FOO"), C("XYZZY some argument"), C("NOOP"), C("RETRX a.txt"))),
    S(
        "syntax-lower-case-verbs",
        (C("noop"), C("pwd"), C("type i"), C("Size a.txt"), C("cwd sub"), C("xpwd")),
    ),
    S("syntax-not-implemented", (C("SMNT /"), C("ACCT billing"), C("NOOP"))),
    S(
        "syntax-malformed-arguments",
        (
            C("MFMT 2020 a.txt"),
            C("MFMT 20201340000000 a.txt"),
            C("MFMT abcdefghijklmn a.txt"),
            C("MFMT 20200101000000"),
            C("SITE CHMOD xyz a.txt"),
            C("SITE CHMOD 600"),
            C("SITE CHMOD 99999 a.txt"),
            C("SITE NOSUCH"),
            C("HELP NOSUCH"),
            C("OPTS NOSUCH"),
        ),
    ),
]

PARAMS = [
    S(
        "params-type",
        (
            C("TYPE A"),
            C("TYPE I"),
            C("TYPE L 8"),
            C("TYPE L8"),
            C("TYPE a"),
            C("TYPE i"),
            C("TYPE A N"),
            C("TYPE E"),
            C("TYPE L 7"),
            C("TYPE X"),
            C("TYPE I X"),
        ),
    ),
    S(
        "params-stru-mode",
        (
            C("STRU F"),
            C("STRU R"),
            C("STRU P"),
            C("STRU X"),
            C("MODE S"),
            C("MODE B"),
            C("MODE C"),
            C("MODE Z"),
            C("MODE X"),
            C("STRU f"),
            C("MODE s"),
        ),
    ),
    S(
        "params-informational",
        (
            C("NOOP"),
            C("SYST"),
            C("ALLO 100"),
            C("ALLO 100 R 10"),
            C("HELP"),
            C("HELP RETR"),
            C("HELP retr"),
            C("SITE HELP"),
            C("STAT"),
        ),
    ),
    S("params-feat", (C("FEAT"),)),
    S("params-opts-utf8", (C("OPTS UTF8 ON"), C("OPTS UTF8"), C("OPTS utf8 on"))),
    S(
        "params-opts-mlst",
        (
            C("OPTS MLST type;size;"),
            C("MLST a.txt"),
            C("OPTS MLST bogus;"),
            C("MLST a.txt"),
            C("OPTS MLST Type;Modify;"),
            C("MLST a.txt"),
            C("OPTS MLST type;perm;size;modify;"),
            Xfer("MLSD"),
        ),
    ),
    S(
        "params-rest",
        (
            C("TYPE I"),
            C("REST 0"),
            C("REST 100"),
            C("REST -1"),
            C("REST abc"),
            C("REST 1.5"),
            C("REST 99999999999999999999"),
            C("REST"),
        ),
    ),
    S("params-rest-in-ascii", (C("TYPE A"), C("REST 10"), Xfer("RETR a.txt"))),
]

NETWORK = [
    S("net-pasv-twice", (C("PASV"), C("PASV"), Xfer("NLST"))),
    S(
        "net-epsv-variants",
        (C("EPSV"), C("EPSV 1"), C("EPSV 2"), C("EPSV 3"), C("EPSV foo"), Xfer("NLST", "EPSV")),
    ),
    S(
        "net-epsv-all",
        (
            C("EPSV ALL"),
            C("PASV"),
            C("PORT 127,0,0,1,200,1"),
            C("EPRT |1|127.0.0.1|51201|"),
            Xfer("NLST", "EPSV"),
            C("epsv all"),
        ),
    ),
    S(
        "net-epsv-all-then-transfers",
        (C("EPSV ALL"), Xfer("LIST", "EPSV"), C("PASV"), Xfer("RETR a.txt", "EPSV"), C("EPSV")),
    ),
    S(
        "net-port-foreign-address",
        (C("PORT 127,0,0,2,200,10"), C("EPRT |1|127.0.0.2|51210|"), Xfer("NLST", "PORT")),
    ),
    S("net-port-privileged", (C("PORT 127,0,0,1,0,21"), C("EPRT |1|127.0.0.1|21|"))),
    S(
        "net-port-malformed",
        (
            C("PORT 1,2,3"),
            C("PORT a,b,c,d,e,f"),
            C("PORT 127,0,0,1,300,1"),
            C("PORT 127,0,0,1,-1,1"),
            C("PORT 127,0,0,1,200,1,5"),
        ),
    ),
    S(
        "net-eprt-malformed",
        (
            C("EPRT bad"),
            C("EPRT |3|127.0.0.1|51201|"),
            C("EPRT |2|::1|51201|"),
            C("EPRT |1|::1|51201|"),
            C("EPRT |1|127.0.0.1|port|"),
            C("EPRT |1|127.0.0.1|70000|"),
            C("EPRT |1|not-an-ip|51201|"),
        ),
    ),
    S(
        "net-transfer-without-setup",
        (C("RETR a.txt"), C("LIST"), C("STOR x.txt"), C("NLST"), C("MLSD")),
    ),
    S(
        "net-each-mode",
        (Xfer("NLST", "PASV"), Xfer("NLST", "EPSV"), Xfer("NLST", "PORT"), Xfer("NLST", "EPRT")),
    ),
]

ABORT = [
    S("abor-idle", (C("ABOR"), C("NOOP"))),
    S("abor-after-pasv", (C("PASV"), C("ABOR"), Xfer("NLST"))),
    S("abor-after-epsv", (Xfer(None, "EPSV"), C("ABOR"), Xfer("NLST"))),
    S("abor-after-port", (Xfer(None, "PORT"), C("ABOR"), Xfer("NLST"))),
    S(
        "abor-during-retr",
        (C("TYPE I"), During("RETR big.bin"), C("NOOP"), Xfer("RETR a.txt")),
        big=True,
    ),
    S("abor-during-retr-oob", (C("TYPE I"), During("RETR big.bin", oob=True), C("NOOP")), big=True),
    S(
        "abor-during-retr-active",
        (C("TYPE I"), During("RETR big.bin", via="PORT"), C("NOOP")),
        big=True,
    ),
    S("abor-during-list", (During("LIST", send="ABOR"), C("NOOP"))),
    S(
        "abor-during-stor",
        (C("TYPE I"), During("STOR a.txt", upload=True), C("NOOP"), Wait(0.1), C("SIZE a.txt")),
    ),
    S("abor-after-transfer", (Xfer("RETR a.txt"), C("ABOR"), C("NOOP"))),
]

DURING = [
    S("during-retr-noop", (C("TYPE I"), During("RETR big.bin", send="NOOP"), C("PWD")), big=True),
    S("during-retr-stat", (C("TYPE I"), During("RETR big.bin", send="STAT"), C("PWD")), big=True),
    S("during-retr-quit", (C("TYPE I"), During("RETR big.bin", send="QUIT"), C("NOOP")), big=True),
    S(
        "during-stor-quit",
        (C("TYPE I"), During("STOR up.bin", send="QUIT", upload=True), C("NOOP")),
    ),
    S(
        "during-stor-noop",
        (C("TYPE I"), During("STOR up.bin", send="NOOP", upload=True), C("SIZE up.bin")),
    ),
]

SCENARIOS = LOGIN + SYNTAX + PARAMS + NETWORK + ABORT + DURING
