rule report:
    input:
        unpack(get_report_inputs),
    output:
        html=report(
            "results/report.html",
            caption="../report/report_html.rst",
            category="Report",
        ),
    log:
        "logs/report/report.log",
    conda:
        "../../envs/base.yaml"
    params:
        n_examples=config["report"]["examples"],
        interpret_examples=config["interpret"]["examples"],
    script:
        "../scripts/report.py"
