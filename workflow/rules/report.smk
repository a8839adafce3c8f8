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
    params:
        n_examples=config["report"]["examples"],
    conda:
        "../../envs/base.yaml"
    script:
        "../scripts/report.py"
