"""Write resources/motifs/ecoli_consensus.meme from the consensus sites below (see SOURCE.md).

Run from the repository root: `python resources/motifs/make_ecoli_motifs.py`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))

from dnalm.motifs import consensus_ppm, write_meme

#: Promoter elements of the sigma factors, then transcription-factor sites (IUPAC consensus, 5' → 3').
ECOLI_MOTIFS = {
    "sigma70_minus35_TTGACA": "TTGACA",
    "sigma70_minus10_TATAAT": "TATAAT",
    "sigma70_extended10_TGnTATAAT": "TGNTATAAT",
    "sigma32_minus35_CTTGAAA": "CTTGAAA",
    "sigma32_minus10_CCCCATnT": "CCCCATNT",
    "sigma54_TGGCACn5TTGCW": "TGGCACNNNNNTTGCW",
    "sigma28_minus10_GCCGATAA": "GCCGATAA",
    "sigma24_minus35_GGAACTT": "GGAACTT",
    "sigma38_minus10_TCTATACT": "TCTATACT",
    "CRP_TGTGAn6TCACA": "TGTGANNNNNNTCACA",
    "LexA_CTGTATATATATACAG": "CTGTATATATATACAG",
    "Fur_GATAATGATAATCATTATC": "GATAATGATAATCATTATC",
    "ArcA_TGTTAATTA": "TGTTAATTA",
    "FNR_TTGATn4ATCAA": "TTGATNNNNATCAA",
    "IHF_WATCAAn4TTR": "WATCAANNNNTTR",
    "PhoB_CTGTCATAWAWCTGTCAYA": "CTGTCATAWAWCTGTCAYA",
    "TyrR_TGTAAAn5TTTACA": "TGTAAANNNNNTTTACA",
    "TrpR_TGTACTAGTTAACTAGTAC": "TGTACTAGTTAACTAGTAC",
    "LacI_AATTGTGAGCGGATAACAATT": "AATTGTGAGCGGATAACAATT",
    "AraC_TAGCATTTTTATCCATA": "TAGCATTTTTATCCATA",
    "MetJ_AGACGTCT": "AGACGTCT",
    "PurR_GCAAACGTTTGC": "GCAAACGTTTGC",
    "ArgR_TnTGAATWWWWATTCAnW": "TNTGAATWWWWATTCANW",
    "CpxR_GTAAAn5GTAAA": "GTAAANNNNNGTAAA",
    "DnaA_TTATCCACA": "TTATCCACA",
    "FadR_TGGTCn4GACCA": "TGGTCNNNNGACCA",
    "NarL_TACYYMT": "TACYYMT",
}

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "ecoli_consensus.meme"
    write_meme(out, {name: consensus_ppm(site) for name, site in ECOLI_MOTIFS.items()}, (0.246, 0.254, 0.254, 0.246))
    print(f"{len(ECOLI_MOTIFS)} motifs written to {out}")
