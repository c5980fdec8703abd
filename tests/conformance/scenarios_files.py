"""Scenarios about the file system: directories, paths, facts, listings, transfers.

The initial tree (``harness.BASE_TREE``) in ``/<id>``: a.txt (LF and one CRLF line), bin.dat
(4 KiB of every byte value), empty.bin, "with space.txt", sub/inner.txt, sub/deeper/, emptydir/;
``big=True`` adds big.bin (10 MiB).
"""

from __future__ import annotations

from .harness import Cmd, Scenario, Xfer

S = Scenario
C = Cmd

TEXT_CRLF = b"one\r\ntwo\r\n\r\nthree"
TEXT_MIXED = b"lf\ncrlf\r\nbare cr\rend\n"
UPLOAD = bytes(range(256)) * 3 + b"tail"

DIRS = [
    S(
        "dir-cwd-pwd",
        (
            C("PWD"),
            C("CWD sub"),
            C("PWD"),
            C("CWD deeper"),
            C("PWD"),
            C("CDUP"),
            C("PWD"),
            C("XCUP"),
            C("XPWD"),
            C("XCWD /{id}/sub"),
            C("PWD"),
            C("CWD /{id}"),
            C("PWD"),
        ),
    ),
    S("dir-cwd-errors", (C("CWD nope"), C("CWD a.txt"), C("CWD sub/inner.txt"), C("PWD"))),
    S("dir-cwd-no-argument", (C("CWD"), C("PWD"))),
    S(
        "dir-dotdot-at-root",
        (
            C("CWD /"),
            C("CWD .."),
            C("PWD"),
            C("CWD ../../.."),
            C("PWD"),
            C("CDUP"),
            C("PWD"),
            C("CWD /../../{id}"),
            C("PWD"),
            C("CWD ../../../{id}/sub"),
            C("PWD"),
        ),
    ),
    S(
        "dir-trailing-slashes",
        (
            C("CWD sub/"),
            C("PWD"),
            C("CWD /{id}//sub//deeper/"),
            C("PWD"),
            C("CWD /{id}/./sub/../sub/."),
            C("PWD"),
            C("CWD /{id}/"),
            C("PWD"),
        ),
    ),
    S(
        "dir-mkd-rmd",
        (
            C("MKD new"),
            C("MKD new"),
            C("XMKD new2"),
            C("RMD new"),
            C("RMD new"),
            C("XRMD new2"),
            C("RMD sub"),
            C("MKD sub/deeper/x"),
            C("RMD sub/deeper/x"),
            C("RMD emptydir"),
            C("RMD a.txt"),
            C("MKD a.txt"),
            C("MKD nodir/x"),
        ),
    ),
    S("dir-mkd-trailing-slash", (C("MKD newdir/"), C("MKD /{id}/abs/"), C("CWD abs"), C("PWD"))),
    S("dir-mkd-rmd-root", (C("MKD /"), C("RMD /"), C("RMD /.."), C("CWD /"), C("RMD ."))),
    S("dir-rmd-cwd", (C("CWD emptydir"), C("RMD /{id}/emptydir"), C("PWD"), C("CDUP"), C("PWD"))),
    S(
        "dir-mkd-quote",
        (C('MKD a"b'), C('CWD a"b'), C("PWD"), C("CDUP"), C('MKD "quoted"'), C('RMD "quoted"')),
    ),
    S(
        "dir-mkd-spaces",
        (
            C("MKD a b"),
            C("MKD  lead"),
            C("MKD trail "),
            C("CWD a b"),
            C("PWD"),
            C("CWD /{id}"),
            Xfer("NLST"),
        ),
    ),
    S(
        "dir-mkd-non-ascii",
        (
            C("MKD café"),
            C("CWD café"),
            C("PWD"),
            C("CDUP"),
            C("MKD 日本"),
            Xfer("NLST"),
            C("RMD 日本"),
        ),
    ),
    S("dir-mkd-non-utf8", (C(b"MKD \xe9t\xe9"), C(b"CWD \xe9t\xe9"), C("PWD"))),
    # A directory stays until RMD, whatever happens to its files (on object storage it is a key
    # prefix, kept alive by its marker).
    S(
        "dir-outlives-its-files",
        (
            C("DELE sub/inner.txt"),
            C("RMD sub/deeper"),
            C("CWD sub"),
            Xfer("NLST"),
            C("CDUP"),
            C("MKD made"),
            Xfer("STOR made/f.txt", upload=b"f"),
            C("RMD made"),
            C("DELE made/f.txt"),
            C("CWD made"),
            C("PWD"),
            C("CDUP"),
            C("RMD made"),
            C("RMD sub"),
        ),
    ),
]

FILES = [
    S(
        "file-dele",
        (
            C("DELE a.txt"),
            C("DELE a.txt"),
            C("DELE sub"),
            C("DELE nope"),
            C("DELE with space.txt"),
            C("DELE sub/inner.txt"),
            C("DELE /"),
        ),
    ),
    S(
        "file-rename-chain",
        (
            C("RNFR a.txt"),
            C("RNTO b.txt"),
            C("RNFR b.txt"),
            C("RNTO c.txt"),
            C("RNFR c.txt"),
            C("RNTO sub/c.txt"),
            C("RNFR sub"),
            C("RNTO sub2"),
            C("CWD sub2"),
            C("RNFR c.txt"),
            C("RNTO ../final.txt"),
            C("CDUP"),
            C("RNFR emptydir"),
            C("RNTO sub2/moved"),
        ),
    ),
    S(
        "file-rename-errors",
        (
            C("RNTO x"),
            C("RNFR nope"),
            C("RNTO x"),
            C("RNFR a.txt"),
            C("RNTO nodir/x.txt"),
            C("RNFR /"),
            C("RNTO x"),
            C("RNFR a.txt"),
            C("RNFR bin.dat"),
            C("RNTO b.dat"),
        ),
    ),
    S("file-rename-interrupted", (C("RNFR a.txt"), C("NOOP"), C("RNTO b.txt"))),
    S("file-rename-onto-root", (C("RNFR a.txt"), C("RNTO /"))),
    S(
        "file-rename-overwrite",
        (C("RNFR a.txt"), C("RNTO bin.dat"), C("TYPE I"), C("SIZE bin.dat")),
    ),
    S("file-rename-dir-into-itself", (C("RNFR sub"), C("RNTO sub/deeper/x"))),
    S(
        "file-rename-spaces-quotes",
        (C("RNFR with space.txt"), C('RNTO new "name".txt'), C("RNFR sub"), C("RNTO  sub lead")),
    ),
    # What a rename carries over (content, size, time), for files and an empty directory.
    S(
        "file-rename-keeps-facts",
        (
            C("TYPE I"),
            C("RNFR a.txt"),
            C("RNTO moved.txt"),
            C("SIZE moved.txt"),
            C("MDTM moved.txt"),
            C("RNFR moved.txt"),
            C("RNTO sub/moved.txt"),
            Xfer("RETR sub/moved.txt"),
            C("CWD sub"),
            C("RNFR moved.txt"),
            C("RNTO ../final.txt"),
            C("CDUP"),
            C("RNFR emptydir"),
            C("RNTO sub/moved-dir"),
            C("MLST sub/moved-dir"),
            Xfer("NLST sub"),
        ),
    ),
    S(
        "file-rename-onto-existing",
        (
            C("RNFR a.txt"),
            C("RNTO emptydir"),
            C("RNFR emptydir"),
            C("RNTO a.txt"),
            C("RNFR emptydir"),
            C("RNTO sub"),
            C("MKD empty2"),
            C("RNFR emptydir"),
            C("RNTO empty2"),
            Xfer("NLST"),
        ),
    ),
    S(
        "file-size-mdtm",
        (
            C("TYPE I"),
            C("SIZE a.txt"),
            C("SIZE empty.bin"),
            C("SIZE with space.txt"),
            C("SIZE sub"),
            C("SIZE nope"),
            C("MDTM a.txt"),
            C("MDTM sub"),
            C("MDTM nope"),
            C("MDTM sub/inner.txt"),
        ),
    ),
    S("file-size-ascii", (C("TYPE A"), C("SIZE a.txt"), C("SIZE bin.dat"))),
    S(
        "file-mfmt",
        (
            C("MFMT 20200102030405 a.txt"),
            C("MDTM a.txt"),
            C("MFMT 20200102030405 nope"),
            C("MFMT 20200102030405 sub"),
            C("MFMT 20200102030405 with space.txt"),
            C("MDTM with space.txt"),
        ),
    ),
    S(
        "file-mlst",
        (
            C("MLST a.txt"),
            C("MLST sub"),
            C("MLST"),
            C("MLST nope"),
            C("MLST with space.txt"),
            C("MLST /"),
            C("MLST /{id}/sub/inner.txt"),
            C("MLST sub/"),
        ),
    ),
    S(
        "file-site-chmod",
        (
            C("SITE CHMOD 600 a.txt"),
            C("SITE CHMOD 755 sub"),
            C("SITE CHMOD 644 nope"),
            C("site chmod 644 a.txt"),
        ),
    ),
]

PATHS = [
    S(
        "path-absolute",
        (
            C("TYPE I"),
            Xfer("RETR /{id}/a.txt"),
            C("SIZE /{id}/sub/inner.txt"),
            Xfer("NLST /{id}/sub"),
            C("MKD /{id}/abs"),
            C("RMD /{id}/abs"),
        ),
    ),
    S(
        "path-escape-attempts",
        (
            Xfer("RETR ../../../../etc/passwd"),
            C("CWD ../../../../../etc"),
            C("PWD"),
            C("SIZE /../../etc/passwd"),
            Xfer("LIST ../../../{id}/sub"),
            C("CWD ../../../.."),
            C("PWD"),
            C("MKD ../../../../{id}/made"),
            C("CWD /{id}"),
        ),
    ),
    S(
        "path-dot-segments",
        (
            C("TYPE I"),
            Xfer("RETR ./sub/../a.txt"),
            C("SIZE sub/./inner.txt"),
            C("SIZE sub//inner.txt"),
            Xfer("NLST ./sub/"),
            C("CWD ./sub/./deeper/.."),
            C("PWD"),
        ),
    ),
    S(
        "path-names-with-spaces",
        (
            Xfer("RETR with space.txt"),
            Xfer("STOR two  spaces.txt", upload=b"2"),
            Xfer("STOR  leading.txt", upload=b"L"),
            Xfer("NLST"),
            C("TYPE I"),  # pyftpdlib refuses SIZE in TYPE A; the name is what is checked here
            C("SIZE two  spaces.txt"),
        ),
    ),
    S(
        "path-non-ascii-file",
        (
            C("TYPE I"),
            Xfer("STOR café.txt", upload="é".encode()),
            Xfer("RETR café.txt"),
            Xfer("NLST"),
            C("SIZE café.txt"),
            C("RNFR café.txt"),
            C("RNTO naïve.txt"),
            C("DELE naïve.txt"),
        ),
    ),
    S(
        "path-non-utf8-file",
        (
            C("TYPE I"),
            Xfer(b"STOR caf\xe9.bin", upload=b"latin-1 name"),
            Xfer(b"RETR caf\xe9.bin"),
            C(b"SIZE caf\xe9.bin"),
        ),
    ),
    # Characters that mean something in a URL (S3 keys travel in one).
    S(
        "path-url-special-names",
        (
            C("TYPE I"),
            Xfer("STOR a+b.txt", upload=b"plus"),
            Xfer("STOR 100%.txt", upload=b"percent"),
            Xfer("STOR q?x=1&y.txt", upload=b"query"),
            Xfer("STOR h#frag.txt", upload=b"hash"),
            Xfer("STOR back\\slash.txt", upload=b"backslash"),
            Xfer("STOR tilde~ *.txt", upload=b"star"),
            Xfer("NLST"),
            C("SIZE a+b.txt"),
            C("SIZE 100%.txt"),
            Xfer("RETR q?x=1&y.txt"),
            C("RNFR h#frag.txt"),
            C("RNTO %41.txt"),
            Xfer("RETR %41.txt"),
            C("DELE a+b.txt"),
            Xfer("LIST"),
        ),
    ),
    S(
        "path-quote-in-file-name",
        (
            Xfer('STOR say "hi".txt', upload=b"hi"),
            Xfer('RETR say "hi".txt'),
            C('MLST say "hi".txt'),
        ),
    ),
]

LISTINGS = [
    S("list-cwd", (Xfer("LIST"),)),
    S("list-dir", (Xfer("LIST sub"), Xfer("LIST emptydir"), Xfer("LIST /{id}/sub/"))),
    S("list-file", (Xfer("LIST a.txt"), Xfer("LIST with space.txt"))),
    S("list-missing", (Xfer("LIST nope"), Xfer("LIST nope/deeper"))),
    S("list-flags", (Xfer("LIST -la"), Xfer("LIST -a"), Xfer("LIST -l"), Xfer("LIST -al"))),
    S("list-flags-with-path", (Xfer("LIST -la sub"), Xfer("LIST -a sub"))),
    S("list-modes", (Xfer("LIST", "EPSV"), Xfer("LIST", "PORT"), Xfer("LIST", "EPRT"))),
    S("list-after-upload", (Xfer("STOR fresh.txt", upload=b"fresh"), Xfer("LIST"))),
    S(
        "nlst-variants",
        (
            Xfer("NLST"),
            Xfer("NLST sub"),
            Xfer("NLST emptydir"),
            Xfer("NLST a.txt"),
            Xfer("NLST nope"),
            Xfer("NLST /{id}/sub/inner.txt"),
        ),
    ),
    S(
        "mlsd-variants",
        (
            Xfer("MLSD"),
            Xfer("MLSD sub"),
            Xfer("MLSD emptydir"),
            Xfer("MLSD a.txt"),
            Xfer("MLSD nope"),
            Xfer("MLSD /{id}/sub/"),
        ),
    ),
    S("stat-listing", (C("STAT a.txt"), C("STAT sub"), C("STAT nope"), C("STAT *.txt"), C("STAT"))),
]

TRANSFERS = [
    S(
        "retr-binary-each-mode",
        (
            C("TYPE I"),
            Xfer("RETR bin.dat"),
            Xfer("RETR a.txt", "EPSV"),
            Xfer("RETR empty.bin", "PORT"),
            Xfer("RETR with space.txt", "EPRT"),
        ),
    ),
    S("retr-ascii", (C("TYPE A"), Xfer("RETR a.txt"), Xfer("RETR bin.dat"))),
    S(
        "retr-ascii-crlf-file",
        (C("TYPE I"), Xfer("STOR crlf.txt", upload=TEXT_CRLF), C("TYPE A"), Xfer("RETR crlf.txt")),
    ),
    S("retr-errors", (Xfer("RETR nope"), Xfer("RETR sub"), Xfer("RETR"))),
    S("retr-10mib", (C("TYPE I"), Xfer("RETR big.bin"), C("SIZE big.bin")), big=True),
    S(
        "stor-binary",
        (C("TYPE I"), Xfer("STOR new.bin", upload=UPLOAD), Xfer("RETR new.bin"), C("SIZE new.bin")),
    ),
    S("stor-overwrite", (C("TYPE I"), Xfer("STOR a.txt", upload=b"replaced"), C("SIZE a.txt"))),
    S(
        "stor-zero-bytes",
        (
            C("TYPE I"),
            Xfer("STOR zero.bin", upload=b""),
            C("SIZE zero.bin"),
            Xfer("RETR zero.bin"),
            Xfer("STOR a.txt", upload=b""),
        ),
    ),
    S(
        "stor-10mib",
        (
            C("TYPE I"),
            Xfer("STOR up.bin", upload=b"\x5a\xa5" * (5 * 1024 * 1024)),
            C("SIZE up.bin"),
        ),
    ),
    S(
        "stor-ascii",
        (
            C("TYPE A"),
            Xfer("STOR crlf.txt", upload=TEXT_CRLF),
            Xfer("STOR mixed.txt", upload=TEXT_MIXED),
            C("TYPE I"),
            Xfer("RETR crlf.txt"),
            Xfer("RETR mixed.txt"),
        ),
    ),
    S(
        "stor-each-mode",
        (
            C("TYPE I"),
            Xfer("STOR p.bin", "PASV", b"p"),
            Xfer("STOR e.bin", "EPSV", b"e"),
            Xfer("STOR a.bin", "PORT", b"a"),
            Xfer("STOR x.bin", "EPRT", b"x"),
        ),
    ),
    S(
        "stor-errors",
        (
            Xfer("STOR nodir/x.txt", upload=b"x"),
            Xfer("STOR sub", upload=b"x"),
            Xfer("STOR /", upload=b"x"),
        ),
    ),
    S(
        "appe",
        (
            C("TYPE I"),
            Xfer("APPE a.txt", upload=b"appended"),
            Xfer("APPE new.txt", upload=b"new"),
            Xfer("APPE new.txt", upload=b"+more"),
            Xfer("RETR new.txt"),
            Xfer("APPE sub", upload=b"x"),
        ),
    ),
    S(
        "stou",
        (
            C("TYPE I"),
            Xfer("STOU", upload=b"unique one"),
            Xfer("STOU", upload=b"unique two"),
            Xfer("STOU up", upload=b"with prefix"),
        ),
    ),
    S("stou-errors", (C("TYPE I"), Xfer("STOU nodir/x", upload=b"x"))),
    S(
        "rest-retr",
        (
            C("TYPE I"),
            C("REST 100"),
            Xfer("RETR bin.dat"),
            C("REST 0"),
            Xfer("RETR a.txt"),
            C("REST 5"),
            Xfer("RETR a.txt"),
            Xfer("RETR a.txt"),
        ),
    ),
    S("rest-retr-at-end", (C("TYPE I"), C("REST 4096"), Xfer("RETR bin.dat"))),
    S("rest-retr-beyond-end", (C("TYPE I"), C("REST 100000"), Xfer("RETR a.txt"), C("NOOP"))),
    S(
        "rest-stor",
        (
            C("TYPE I"),
            C("REST 10"),
            Xfer("STOR bin.dat", upload=b"RESUMED"),
            C("SIZE bin.dat"),
            Xfer("RETR bin.dat"),
        ),
    ),
    S(
        "rest-stor-full-resume",
        (
            C("TYPE I"),
            Xfer("STOR part.bin", upload=UPLOAD[:300]),
            C("SIZE part.bin"),
            C("REST 300"),
            Xfer("STOR part.bin", upload=UPLOAD[300:]),
            Xfer("RETR part.bin"),
        ),
    ),
    S(
        "rest-stor-beyond-end",
        (C("TYPE I"), C("REST 100000"), Xfer("STOR a.txt", upload=b"x"), C("SIZE a.txt")),
    ),
    S("rest-appe", (C("TYPE I"), C("REST 5"), Xfer("APPE a.txt", upload=b"x"), C("SIZE a.txt"))),
    S("rest-stou", (C("TYPE I"), C("REST 5"), Xfer("STOU", upload=b"x"))),
    S("rest-big-resume", (C("TYPE I"), C("REST 10000000"), Xfer("RETR big.bin")), big=True),
    S(
        "type-a-vs-i",
        (
            C("TYPE I"),
            Xfer("RETR a.txt"),
            C("TYPE A"),
            Xfer("RETR a.txt"),
            C("TYPE L 8"),
            Xfer("RETR a.txt"),
        ),
    ),
]

SCENARIOS = DIRS + FILES + PATHS + LISTINGS + TRANSFERS
