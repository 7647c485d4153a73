import subprocess,sys,re
repo,prefix,tools,pat=sys.argv[1],sys.argv[2],sys.argv[3].split(','),sys.argv[4]
g=['git','--git-dir',repo]
files=subprocess.run(g+['ls-tree','-r','HEAD','--name-only'],capture_output=True,text=True).stdout.split()
files=[f for f in files if f.startswith(prefix) and re.search(pat,f) and not f.endswith('_test.go')]
seen=set()
for f in files:
    t=subprocess.run(g+['show','HEAD:'+f],capture_output=True,text=True).stdout
    lines=t.splitlines(); i=0
    while i<len(lines):
        l=lines[i].strip().strip('`').strip()
        for p in ('$ ','# ','> '):
            if l.startswith(p) and any(l[len(p):].startswith(x+' ') for x in tools): l=l[len(p):]
        if any(l.startswith(x+' ') or l==x for x in tools):
            while l.endswith('\\') and i+1<len(lines):
                i+=1; l=l[:-1].rstrip()+' '+lines[i].strip()
            if l not in seen:
                seen.add(l); print(f+'\t'+l)
        i+=1
