"""Tests for dnalm.download against a real local HTTP server and files made in the test."""

import gzip
import hashlib
import http.server
import json
import struct
import threading
from collections import Counter
from pathlib import Path

import pyBigWig
import pytest
from pyfaidx import Fasta

import dnalm.io.bigwig
from dnalm.download import prepare_annotation, prepare_genome, prepare_track
from dnalm.io.errors import DownloadError

SEQ_I = "ACGT" * 300 + "AC"  # 1202 bp, written 50 a line in the source
SEQ_M = "TTGCA" * 3  # 15 bp
FASTA = (
    ">chrI chromosome I, some description\n"
    + "\n".join(SEQ_I[i : i + 50] for i in range(0, len(SEQ_I), 50))
    + "\n>chrM\n"
    + SEQ_M
    + "\n"
)
FASTA_GZ = gzip.compress(FASTA.encode())
FAST = {"retries": 3, "backoff": 0.01, "timeout": 5.0}

GTF = """#!genome-build R64-1-1
IV\tsgd\tgene\t1802\t2953\t.\t+\t.\tgene_id "YDL248W"; gene_name "COS7"; gene_source "sgd"; gene_biotype "protein_coding";
IV\tsgd\ttranscript\t1802\t2953\t.\t+\t.\tgene_id "YDL248W"; transcript_id "YDL248W_mRNA"; gene_source "sgd"; transcript_biotype "protein_coding"; tag "basic"; tag "Ensembl_canonical";
IV\tsgd\texon\t1802\t2953\t.\t+\t.\tgene_id "YDL248W"; transcript_id "YDL248W_mRNA"; exon_number "1"; exon_id "YDL248W_mRNA-E1"; note "a;b=c";
IV\tsgd\tCDS\t1802\t2950\t.\t+\t0\tgene_id "YDL248W"; transcript_id "YDL248W_mRNA"; exon_number "1"; protein_id "YDL248W";
IV\tsgd\tstop_codon\t2951\t2953\t.\t+\t0\tgene_id "YDL248W"; transcript_id "YDL248W_mRNA"; exon_number "1";
"""

GTF_CHILDREN_ONLY = """IV\tsgd\texon\t100\t200\t.\t-\t.\tgene_id "G1"; transcript_id "T1"; gene_biotype "protein_coding";
IV\tsgd\tCDS\t120\t200\t.\t-\t0\tgene_id "G1"; transcript_id "T1";
IV\tsgd\texon\t300\t400\t.\t-\t.\tgene_id "G1"; transcript_id "T1";
IV\tsgd\texon\t350\t500\t.\t-\t.\tgene_id "G1"; transcript_id "T2";
"""


class Server:
    """A local HTTP server with scripted answers, counting requests per path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[int]] = {}
        self.requests: Counter = Counter()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] += 1
                pending = server.failures.get(self.path)
                if pending:
                    self.send_error(pending.pop(0))
                elif self.path in server.files:
                    body = server.files[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def server():
    srv = Server()
    srv.files["/genome.fa.gz"] = FASTA_GZ
    srv.files["/truncated.fa.gz"] = FASTA_GZ[: len(FASTA_GZ) // 2]
    srv.files["/flaky.fa.gz"] = FASTA_GZ
    srv.failures["/flaky.fa.gz"] = [503, 503]
    srv.failures["/down.fa.gz"] = [503] * 10
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def fasta_text(name: str, seq: str) -> str:
    """One FASTA record as the download writes it: 60 bases a line."""
    return f">{name}\n" + "".join(f"{seq[i : i + 60]}\n" for i in range(0, len(seq), 60))


def genome_paths(directory):
    return {
        k: str(directory / n)
        for k, n in (("fasta", "g.fa"), ("fai", "g.fa.fai"), ("info", "g.json"))
    }


def expected_fasta() -> str:
    lines = (
        [">I"]
        + [SEQ_I[i : i + 60] for i in range(0, len(SEQ_I), 60)]
        + [">chrM", SEQ_M]
    )
    return "\n".join(lines) + "\n"


def test_http_genome_is_decompressed_renamed_indexed_and_described(server, tmp_path):
    out = genome_paths(tmp_path / "out")
    md5 = hashlib.md5(FASTA_GZ).hexdigest()
    url = server.url("/genome.fa.gz")
    info = prepare_genome(
        url, **out, md5=md5.upper(), aliases={"chrI": "I", "chrX": "X"}, **FAST
    )
    assert Path(out["fasta"]).read_text() == expected_fasta()
    i_offset = len(">I\n")
    m_offset = i_offset + 1202 + 21 + len(">chrM\n")
    assert Path(out["fai"]).read_text().splitlines() == [
        f"I\t1202\t{i_offset}\t60\t61",
        f"chrM\t15\t{m_offset}\t15\t16",
    ]
    assert json.loads(Path(out["info"]).read_text()) == info
    assert info == {
        "kind": "genome",
        "source": url,
        "resolved": url,
        "md5": md5,
        "md5_expected": md5,
        "bytes": len(FASTA_GZ),
        "gzip": True,
        "renamed": {"chrI": "I"},
        "sequences": 2,
        "length": 1217,
    }
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "g.fa",
        "g.fa.fai",
        "g.json",
    ]


def test_md5_mismatch_names_url_and_leaves_nothing(server, tmp_path):
    url = server.url("/genome.fa.gz")
    with pytest.raises(DownloadError) as err:
        prepare_genome(url, **genome_paths(tmp_path), md5="0" * 32, **FAST)
    message = str(err.value)
    assert url in message and "0" * 32 in message
    assert hashlib.md5(FASTA_GZ).hexdigest() in message and "md5" in message
    assert list(tmp_path.iterdir()) == []


def test_404_fails_at_once_without_retry(server, tmp_path):
    url = server.url("/missing.fa.gz")
    with pytest.raises(DownloadError, match="404") as err:
        prepare_genome(url, **genome_paths(tmp_path), **FAST)
    assert url in str(err.value)
    assert server.requests["/missing.fa.gz"] == 1
    assert list(tmp_path.iterdir()) == []


def test_truncated_gzip_names_url_and_leaves_nothing(server, tmp_path):
    url = server.url("/truncated.fa.gz")
    with pytest.raises(DownloadError, match="gzip") as err:
        prepare_genome(url, **genome_paths(tmp_path), **FAST)
    assert url in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_503_is_retried_until_the_file_comes(server, tmp_path):
    out = genome_paths(tmp_path)
    info = prepare_genome(
        server.url("/flaky.fa.gz"), **out, aliases={"chrI": "I"}, **FAST
    )
    assert server.requests["/flaky.fa.gz"] == 3
    assert Path(out["fasta"]).read_text() == expected_fasta()
    assert info["md5"] == hashlib.md5(FASTA_GZ).hexdigest()


def test_persistent_503_gives_up_after_retries(server, tmp_path):
    url = server.url("/down.fa.gz")
    with pytest.raises(DownloadError, match="3 attempts") as err:
        prepare_genome(
            url, **genome_paths(tmp_path), retries=2, backoff=0.01, timeout=5.0
        )
    assert url in str(err.value)
    assert server.requests["/down.fa.gz"] == 3
    assert list(tmp_path.iterdir()) == []


def test_file_url_relative_is_found_in_search_dirs_in_order(tmp_path):
    first, second = tmp_path / "cwd", tmp_path / "repo"
    (first / "resources").mkdir(parents=True)
    (second / "resources").mkdir(parents=True)
    (second / "resources" / "x.fa").write_text(fasta_text("s1", "ACGT" * 250))
    out = genome_paths(tmp_path / "out")
    dirs = [str(first), str(second)]
    info = prepare_genome("file://resources/x.fa", **out, search_dirs=dirs)
    assert info["resolved"] == str(second / "resources" / "x.fa")
    assert info["source"] == "file://resources/x.fa" and info["gzip"] is False
    (first / "resources" / "x.fa").write_text(fasta_text("s2", "G" * 1000))
    prepare_genome("file://resources/x.fa", **out, search_dirs=dirs)
    assert Path(out["fasta"]).read_text() == fasta_text("s2", "G" * 1000)
    with pytest.raises(DownloadError) as err:
        prepare_genome("file://resources/y.fa", **out, search_dirs=dirs)
    assert "file://resources/y.fa" in str(err.value)
    assert str(first) in str(err.value) and str(second) in str(err.value)


def test_plain_and_absolute_file_paths(tmp_path):
    source = tmp_path / "in.fa.gz"
    source.write_bytes(FASTA_GZ)
    out = genome_paths(tmp_path / "out")
    info = prepare_genome(str(source), **out, md5=hashlib.md5(FASTA_GZ).hexdigest())
    assert info["resolved"] == str(source) and info["bytes"] == len(FASTA_GZ)
    assert Path(out["fasta"]).read_text().startswith(">chrI\n" + SEQ_I[:60] + "\n")
    info = prepare_genome("file://" + str(source), **out)
    assert info["resolved"] == str(source) and info["md5_expected"] is None
    info = prepare_genome("in.fa.gz", **out, search_dirs=[str(tmp_path)])
    assert info["resolved"] == str(source)


@pytest.mark.parametrize("prefix", ["file://localhost", "file://", "file:"])
def test_absolute_file_urls_are_absolute_paths(tmp_path, prefix):
    source = tmp_path / "in.fa.gz"
    source.write_bytes(FASTA_GZ)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = genome_paths(tmp_path / "out")
    info = prepare_genome(prefix + str(source), **out, search_dirs=[str(elsewhere)])
    assert info["resolved"] == str(source) and info["source"] == prefix + str(source)
    assert Path(out["fasta"]).read_text().startswith(">chrI\n" + SEQ_I[:60] + "\n")
    with pytest.raises(DownloadError) as err:
        prepare_genome(f"file://localhost{tmp_path}/missing.fa", **out, search_dirs=[str(elsewhere)])
    assert f"tried {tmp_path}/missing.fa;" in str(err.value)


def test_long_sequence_is_rewrapped_at_60_and_indexable(tmp_path):
    bases = "".join("ACGT"[(i * i + 7 * i) % 4] for i in range(130_003))
    source = tmp_path / "long.fa"
    source.write_text(
        ">chr1\n"
        + "\n".join(bases[i : i + 61] for i in range(0, len(bases), 61))
        + "\n"
    )
    out = genome_paths(tmp_path / "out")
    info = prepare_genome(str(source), **out)
    lines = Path(out["fasta"]).read_text().splitlines()
    assert lines[0] == ">chr1" and "".join(lines[1:]) == bases
    assert {len(line) for line in lines[1:-1]} == {60} and len(
        lines[-1]
    ) == 130_003 % 60
    with Fasta(out["fasta"]) as fasta:
        assert str(fasta["chr1"][59_990:60_070]) == bases[59_990:60_070]
    assert info["length"] == 130_003 and info["sequences"] == 1


@pytest.mark.parametrize(
    "text, aliases, message",
    [
        (">chrI\nAC\n>I\nGT\n", {"chrI": "I"}, "'I' and 'chrI'|'chrI' and 'I'"),
        (">a\nAC\n>b\nGT\n", {"a": "x", "b": "x"}, "'a' and 'b' both become 'x'"),
        (">a\nAC\n>a desc\nGT\n", None, "line 3: duplicate FASTA record 'a'"),
        ("ACGT\n>a\nAC\n", None, "line 1: sequence before"),
        (">a\nAC\n> \nGT\n", None, "line 3: FASTA header without a name"),
        ("\n\n", None, "no '>' record"),
        (">a\n>b\n>c\n", None, r"3 FASTA record\(s\) without sequence: 'a' \(line 1\), 'b' \(line 2\), 'c' \(line 3\)"),
        (f">a\n{'ACGT' * 300}\n>gap desc\n\n>b\nAC\n", None, r"1 FASTA record\(s\) without sequence: 'gap' \(line 3\);"),
        (">a\nACGT\n>b\nGG\n", None, r"6 bp in 2 record\(s\), fewer than the 1000 bp"),
    ],
)
def test_bad_fasta_is_refused_and_leaves_nothing(tmp_path, text, aliases, message):
    source = tmp_path / "in" / "bad.fa"
    source.parent.mkdir()
    source.write_text(text)
    out_dir = tmp_path / "out"
    with pytest.raises(DownloadError, match=message) as err:
        prepare_genome(str(source), **genome_paths(out_dir), aliases=aliases)
    assert str(source) in str(err.value)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_gff3_seqids_are_renamed(tmp_path):
    source = tmp_path / "a.gff3.gz"
    text = (
        "##gff-version 3\n##sequence-region chrI 1 1000\n"
        "chrI\tsgd\tgene\t10\t20\t.\t+\t.\tID=g1\n"
        "chrM\tsgd\tgene\t5\t8\t.\t-\t.\tID=g2\n"
        "III\tsgd\tgene\t1\t9\t.\t+\t.\tID=g3\n"
        "##FASTA\n>chrI\nACGT\n"
    )
    source.write_bytes(gzip.compress(text.encode()))
    gff, info_path = tmp_path / "out.gff3", tmp_path / "out.json"
    info = prepare_annotation(
        str(source), str(gff), str(info_path), aliases={"chrI": "I", "chrM": "Mito"}
    )
    assert gff.read_text() == (
        "##gff-version 3\n##sequence-region I 1 1000\n"
        "I\tsgd\tgene\t10\t20\t.\t+\t.\tID=g1\n"
        "Mito\tsgd\tgene\t5\t8\t.\t-\t.\tID=g2\n"
        "III\tsgd\tgene\t1\t9\t.\t+\t.\tID=g3\n"
    )
    assert info["renamed"] == {"chrI": "I", "chrM": "Mito"}
    assert (
        info["features"] == 3 and info["kind"] == "annotation" and info["gzip"] is True
    )
    assert json.loads(info_path.read_text()) == info


def test_gff3_alias_collision_is_refused(tmp_path):
    source = tmp_path / "a.gff3"
    source.write_text(
        "chrI\ts\tgene\t1\t2\t.\t+\t.\tID=a\nI\ts\tgene\t1\t2\t.\t+\t.\tID=b\n"
    )
    with pytest.raises(DownloadError, match="both become 'I'"):
        prepare_annotation(
            str(source),
            str(tmp_path / "o.gff3"),
            str(tmp_path / "o.json"),
            aliases={"chrI": "I"},
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gff3"]


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "chrI\ts\tgene\t1\t2\t.\t+\tID=b",
            "line 3: expected 9 tab-separated columns, found 8",
        ),
        (
            "chrI\ts\tgene\tone\t2\t.\t+\t.\tID=b",
            "line 3: start and end must be integers",
        ),
    ],
)
def test_malformed_gff_line_names_its_number(tmp_path, line, message):
    source = tmp_path / "a.gff3"
    source.write_text(f"##gff-version 3\nchrI\ts\tgene\t1\t2\t.\t+\t.\tID=a\n{line}\n")
    with pytest.raises(DownloadError, match=message) as err:
        prepare_annotation(
            str(source), str(tmp_path / "o.gff3"), str(tmp_path / "o.json")
        )
    assert str(source) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gff3"]


GFF3_REVERSED = (
    "##gff-version 3\n"
    "chrI\ts\tgene\t10\t20\t.\t+\t.\tID=g1\n"
    "chrI\ts\tgene\t90\t30\t.\t+\t.\tID=g2\n"
    "chrI\ts\tCDS\t40\t60\t.\t+\t0\tParent=g2\n"
)


def test_gff3_feature_with_start_after_end_is_left_out_and_reported(tmp_path, caplog):
    source = tmp_path / "a.gff3"
    source.write_text(GFF3_REVERSED)
    gff, info_path = tmp_path / "o.gff3", tmp_path / "o.json"
    info = prepare_annotation(str(source), str(gff), str(info_path), aliases={"chrI": "I"})
    assert gff.read_text() == (
        "##gff-version 3\nI\ts\tgene\t10\t20\t.\t+\t.\tID=g1\nI\ts\tCDS\t40\t60\t.\t+\t0\tParent=g2\n"
    )
    assert info["features"] == 2 and info["reversed_features"] == {"count": 1, "lines": [3]}
    assert json.loads(info_path.read_text()) == info
    assert f"{source}: 1 features with start > end left out (lines 3)" in caplog.text


@pytest.mark.parametrize(
    "name, text",
    [
        ("a.gff3", "chrI\ts\tgene\t90\t30\t.\t+\t.\tID=g1\nchrI\ts\tmRNA\t90\t31\t.\t+\t.\tID=t1;Parent=g1\n"),
        ("a.gtf", 'IV\ts\texon\t200\t100\t.\t+\t.\tgene_id "G"; transcript_id "T";\n' * 2),
    ],
)
def test_annotation_of_only_reversed_features_is_refused(tmp_path, name, text):
    source = tmp_path / name
    source.write_text(text)
    with pytest.raises(DownloadError, match=r"every feature \(2\) has its start after its end \(lines 1, 2\)") as err:
        prepare_annotation(str(source), str(tmp_path / "o.gff3"), str(tmp_path / "o.json"))
    assert str(source) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_gtf_record_with_start_after_end_is_left_out_not_swapped(tmp_path):
    source = tmp_path / "a.gtf"
    source.write_text(GTF_CHILDREN_ONLY + 'IV\tsgd\texon\t900\t800\t.\t-\t.\tgene_id "G1"; transcript_id "T1";\n')
    gff = tmp_path / "o.gff3"
    info = prepare_annotation(str(source), str(gff), str(tmp_path / "o.json"))
    rows = read_gff(gff)
    assert not [row for row in rows if 800 in row[2:4] or 900 in row[2:4]]
    assert [row[2:4] for row in rows if row[1] == "exon"] == [(100, 200), (300, 400), (350, 500)]
    assert info["reversed_features"] == {"count": 1, "lines": [5]} and info["features"] == len(rows)


def read_gff(path):
    rows = []
    for line in path.read_text().splitlines()[1:]:
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        attrs = dict(kv.split("=", 1) for kv in cols[8].split(";"))
        rows.append((cols[0], cols[2], int(cols[3]), int(cols[4]), cols[6], attrs))
    return rows


def test_gtf_is_converted_to_gff3(tmp_path):
    """gffread's GFF3: the stop codon joins the CDS (GFF3's convention), repeated keys and escapes survive."""
    source = tmp_path / "a.gtf"
    source.write_text(GTF)
    gff = tmp_path / "o.gff3"
    info = prepare_annotation(str(source), str(gff), str(tmp_path / "o.json"), aliases={"IV": "chrIV"})
    assert gff.read_text().splitlines()[0] == "##gff-version 3"
    rows = read_gff(gff)
    assert [(r[0], r[1]) for r in rows] == [("chrIV", t) for t in ("gene", "transcript", "exon", "CDS")]
    gene, transcript, exon, cds = (r[5] for r in rows)
    assert gene["ID"] == "gene:YDL248W" and "Parent" not in gene
    assert gene["gene_name"] == "COS7" and gene["gene_biotype"] == "protein_coding"
    assert transcript["ID"] == "transcript:YDL248W_mRNA" and transcript["Parent"] == "gene:YDL248W"
    assert transcript["tag"] == "basic,Ensembl_canonical"
    assert exon["Parent"] == "transcript:YDL248W_mRNA" and "ID" not in exon
    assert exon["exon_id"] == "YDL248W_mRNA-E1" and exon["note"] == "a%3Bb%3Dc"
    assert cds["Parent"] == "transcript:YDL248W_mRNA"
    assert cds["protein_id"] == "YDL248W" and rows[3][2:4] == (1802, 2953)
    assert info["features"] == 4 and info["format"] == "gtf" and info["renamed"] == {"IV": "chrIV"}
    assert info["gffread"] == "0.12.7"


def test_gtf_without_parents_gets_them_synthesised(tmp_path):
    source = tmp_path / "a.gtf.gz"
    source.write_bytes(gzip.compress(GTF_CHILDREN_ONLY.encode()))
    gff = tmp_path / "o.gff3"
    info = prepare_annotation(str(source), str(gff), str(tmp_path / "o.json"))
    rows = read_gff(gff)
    assert [r[1] for r in rows] == ["gene", "transcript", "exon", "exon", "CDS", "transcript", "exon"]
    gene, t1, t2 = rows[0], rows[1], rows[5]
    assert gene[2:5] == (100, 500, "-") and gene[5] == {"ID": "gene:G1"}
    assert rows[2][5]["gene_biotype"] == "protein_coding"  # gffread leaves it on the line that has it
    assert t1[2:4] == (100, 400) and t1[5] == {"ID": "transcript:T1", "Parent": "gene:G1"}
    assert t2[2:4] == (350, 500) and t2[5] == {"ID": "transcript:T2", "Parent": "gene:G1"}
    parents = [r[5]["Parent"] for r in rows if r[1] in ("exon", "CDS")]
    assert parents == ["transcript:T1"] * 3 + ["transcript:T2"]
    assert info["features"] == 7


def test_gtf_gene_and_transcript_of_one_name_keep_apart(tmp_path):
    """gffread alone gives such a transcript the ID of its gene (ID=P;Parent=P); the prefixes keep them apart."""
    source = tmp_path / "a.gtf"
    source.write_text(
        'XII\tsgd\ttranscript\t10\t40\t.\t+\t.\tgene_id "P"; transcript_id "P"; note "50%";\n'
        'XII\tsgd\texon\t10\t40\t.\t+\t.\tgene_id "P"; transcript_id "P"; label "a b";\n'
    )
    gff = tmp_path / "o.gff3"
    prepare_annotation(str(source), str(gff), str(tmp_path / "o.json"))
    rows = read_gff(gff)
    assert [(r[1], r[5].get("ID"), r[5].get("Parent")) for r in rows] == [
        ("gene", "gene:P", None), ("transcript", "transcript:P", "gene:P"), ("exon", None, "transcript:P")
    ]
    assert rows[1][5]["note"] == "50%25" and rows[2][5]["label"] == "a b"  # escaped; unquoted


@pytest.mark.parametrize(
    "line, message",
    [
        ('IV\ts\texon\t1\t9\t.\t+\t.\ttranscript_id "T";', "line 2: GTF record without a gene_id"),
        ('IV\ts\texon\t1\t9\t.\t+\t.\tgene_id "G";', "line 2: GTF exon record without a transcript_id"),
        ('IV\ts\texon\t1\tnine\t.\t+\t.\tgene_id "G"; transcript_id "T";', "line 2: start and end must be"),
    ],
)
def test_malformed_gtf_line_names_its_number(tmp_path, line, message):
    source = tmp_path / "a.gtf"
    source.write_text(f'IV\ts\tgene\t1\t9\t.\t+\t.\tgene_id "G";\n{line}\n')
    with pytest.raises(DownloadError, match=message) as err:
        prepare_annotation(str(source), str(tmp_path / "o.gff3"), str(tmp_path / "o.json"))
    assert str(source) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gtf"]


def make_bigwig(path, chroms):
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader([(name, 1000) for name in chroms])
    for i, name in enumerate(chroms):
        bw.addEntries([name, name], [0, 100], ends=[50, 150], values=[1.0 + i, 2.5 + i])
    bw.close()


def test_bigwig_chroms_are_renamed(tmp_path, monkeypatch):
    monkeypatch.setattr(dnalm.io.bigwig, "BIGWIG_STEP", 120)  # windows split (100, 150)
    source = tmp_path / "t.bw"
    make_bigwig(source, ["chrI", "chrII"])
    out, info_path = tmp_path / "o.bw", tmp_path / "o.json"
    info = prepare_track(str(source), str(out), str(info_path), aliases={"chrI": "I"})
    bw = pyBigWig.open(str(out))
    assert bw.chroms() == {"I": 1000, "chrII": 1000}
    assert bw.intervals("I") == ((0, 50, 1.0), (100, 150, 2.5))
    assert bw.intervals("chrII") == ((0, 50, 2.0), (100, 150, 3.5))
    bw.close()
    assert (
        info["renamed"] == {"chrI": "I"}
        and info["chroms"] == 2
        and info["kind"] == "track"
    )


def test_bigwig_without_renames_is_copied_byte_for_byte(tmp_path):
    source = tmp_path / "t.bw.gz"
    make_bigwig(tmp_path / "t.bw", ["I", "II"])
    raw = (tmp_path / "t.bw").read_bytes()
    source.write_bytes(gzip.compress(raw))
    out = tmp_path / "o.bw"
    fai = write_fai(tmp_path / "genome.fa.fai", {"I": 1000, "II": 1000, "III": 5})
    info = prepare_track(
        str(source), str(out), str(tmp_path / "o.json"), genome=fai, aliases={"chrI": "I"}
    )
    assert out.read_bytes() == raw
    assert info["renamed"] == {} and info["gzip"] is True and info["clipped"] == {}


def test_bigwig_alias_collision_is_refused(tmp_path):
    source = tmp_path / "t.bw"
    make_bigwig(source, ["chrI", "I"])
    with pytest.raises(DownloadError, match="both become 'I'") as err:
        prepare_track(
            str(source),
            str(tmp_path / "o.bw"),
            str(tmp_path / "o.json"),
            aliases={"chrI": "I"},
        )
    assert str(source) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bw"]


def test_non_bigwig_track_is_refused(tmp_path):
    source = tmp_path / "t.bw"
    source.write_text("not a bigwig\n")
    with pytest.raises(DownloadError, match="bigWig") as err:
        prepare_track(str(source), str(tmp_path / "o.bw"), str(tmp_path / "o.json"))
    assert str(source) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bw"]


def make_track(path, sizes, step=7):
    """A real bigWig with many data blocks and 10 zoom levels: a 1-bp value every `step` bases."""
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()), maxZooms=10)
    for i, (name, size) in enumerate(sizes.items()):
        starts = list(range(0, size, step))
        bw.addEntries([name] * len(starts), starts, ends=[s + 1 for s in starts], values=[i + s % 5.0 for s in starts])
    bw.close()


def bigwig_offsets(data):
    """chromTreeOffset, fullDataOffset, fullIndexOffset and totalSummaryOffset of a bigWig's header."""
    fields = struct.unpack_from("<IHHQQQHHQQIQ", data)
    return {"chroms": fields[3], "data": fields[4], "index": fields[5], "summary": fields[9]}


def damage(data, where):
    """The bytes of a bigWig with 64 bytes overwritten near its start, or 16 bytes flipped inside a data block."""
    data, at = bytearray(data), bigwig_offsets(data)
    if where == "data block":
        middle = (at["data"] + at["index"]) // 2
        data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
        return bytes(data)
    start = {"header": 8, "chromosome list": at["chroms"] + 24, "total summary": at["summary"] - 48}[where]
    data[start : start + 64] = b"\xff" * 64
    return bytes(data)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("where", ["header", "chromosome list", "total summary", "data block"])
def test_damaged_bigwig_is_refused_naming_the_file_and_leaves_nothing(tmp_path, where, gz):
    good = tmp_path / "good.bw"
    make_track(good, {"I": 60_000, "II": 40_000})
    assert prepare_track(str(good), str(tmp_path / "g.bw"), str(tmp_path / "g.json"))["chroms"] == 2
    bad = damage(good.read_bytes(), where)
    source = tmp_path / "in" / ("t.bw.gz" if gz else "t.bw")
    source.parent.mkdir()
    source.write_bytes(gzip.compress(bad) if gz else bad)
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as err:
        prepare_track(str(source), str(out / "t.bw"), str(out / "t.json"))
    message = str(err.value)
    assert message.startswith(f"{source}: ") and "damaged" in message
    if where == "total summary":  # pybigtools reads it, pyBigWig crashes on it: the child dies, not this process
        assert "crashed (SIGSEGV)" in message
    if where == "data block":
        assert "chromosome 'I'" in message or "chromosome 'II'" in message
    assert not out.exists() or list(out.iterdir()) == []
    assert list(source.parent.iterdir()) == [source]


def write_fai(path, sizes):
    path.write_text("".join(f"{name}\t{size}\t0\t60\t61\n" for name, size in sizes.items()))
    return str(path)


def test_track_and_genome_lengths_that_differ_are_refused(tmp_path):
    source = tmp_path / "in" / "t.bw"
    source.parent.mkdir()
    make_bigwig(source, ["chrI", "II", "M"])
    fai = write_fai(tmp_path / "genome.fa.fai", {"I": 120, "II": 1000})
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as err:
        prepare_track(
            str(source), str(out / "t.bw"), str(out / "t.json"), genome=fai, species="scer", aliases={"chrI": "I"}
        )
    message = str(err.value)
    assert message.startswith(f"{source}: chromosome lengths differ from the genome's ({fai})")
    assert "'I' is 1000 bp in the track, 120 bp in the genome" in message and "'II'" not in message
    assert "species.scer.track_lengths: clip" in message
    assert not out.exists() or list(out.iterdir()) == []


def test_track_is_clipped_to_the_genome_lengths_when_the_config_says_so(tmp_path, caplog):
    source = tmp_path / "t.bw"
    make_bigwig(source, ["chrI", "II", "M"])
    fai = write_fai(tmp_path / "genome.fa.fai", {"I": 120, "II": 2000})
    out, info_path = tmp_path / "o.bw", tmp_path / "o.json"
    info = prepare_track(
        str(source), str(out), str(info_path), genome=fai, track_lengths="clip", aliases={"chrI": "I"}
    )
    bw = pyBigWig.open(str(out))
    assert bw.chroms() == {"I": 120, "II": 2000, "M": 1000}
    assert bw.intervals("I") == ((0, 50, 1.0), (100, 120, 2.5))
    assert bw.intervals("II") == ((0, 50, 2.0), (100, 150, 3.5))
    assert bw.intervals("M") == ((0, 50, 3.0), (100, 150, 4.5))
    bw.close()
    assert info["clipped"] == {
        "I": {"track": 1000, "genome": 120, "bases_dropped": 30},
        "II": {"track": 1000, "genome": 2000, "bases_dropped": 0},
    }
    assert json.loads(info_path.read_text()) == info
    assert "'I' is 1000 bp in the track, 120 bp in the genome" in caplog.text
