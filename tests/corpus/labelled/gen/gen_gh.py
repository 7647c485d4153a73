import re,sys
from common import *
READ_SUBS={'view','list','status','diff','checks','search','browse','download','verify','inspect','check','watch','license','gitignore','credits','field-list','item-list','trusted-root','get','mine','develop-list','ls','license','code'}
def api_cls(w):
    a=w[2:]
    method='GET'
    for i,x in enumerate(a):
        if x in ('-X','--method') and i+1<len(a): method=a[i+1].upper()
        elif x.startswith('--method='): method=x.split('=',1)[1].upper()
        elif x.startswith('-X') and len(x)>2: method=x[2:].upper()
    fields=any(x in ('-f','-F','--field','--raw-field','--input') or x.startswith(('--field=','--raw-field=','-f','-F')) and len(x)>2 and x[:2] in('-f','-F') for x in a)
    if 'graphql' in a:
        q=' '.join(a)
        return 'code' if 'mutation' in q else 'read'
    if method=='GET': return 'read' if not fields or any(x.upper() in ('GET',) for x in a) else 'code'
    return 'code'
def cls(line):
    w=words(line)
    if len(w)<2: return None
    g,s=w[1],(w[2] if len(w)>2 else '')
    if g in ('search','status','completion','browse','version','--version','help','credits','org'): return 'read' if g!='org' or s=='list' else None
    if g=='api': return api_cls(w)
    if g=='auth':
        if s=='token': return 'credential'
        if s=='status': return 'credential' if any(x in ('-t','--show-token') for x in w) else 'read'
        if s in ('login','refresh'): return 'credential'
        if s in ('logout','setup-git','switch'): return 'local'
        return None
    if g in ('secret',):
        if s in ('set',): return 'credential'
        if s in ('list',): return 'read'
        if s in ('delete','remove'): return 'destroy'
    if g in ('alias','config','extension','ext'):
        if s in ('list','get','search','browse','ls'): return 'read'
        if g in ('extension','ext') and s=='exec': return 'code'
        return 'local'
    if g in ('codespace','cs'):
        if s in ('ssh','cp','jupyter','ports','code'): return 'code'
        if s in ('view','list','logs'): return 'read'
        if s=='delete': return 'destroy'
        return 'write'
    if g=='attestation': return 'read'
    if s in READ_SUBS: return 'read'
    if g=='repo' and s in ('clone','set-default'): return 'local'
    if g=='pr' and s=='checkout': return 'local'
    if g=='repo' and s=='sync': return 'destroy' if '--force' in w else 'local' if len([x for x in w[3:] if not x.startswith('-')])==0 else 'write'
    if s in ('delete','delete-asset','item-delete'): return 'destroy'
    if g=='repo' and s=='deploy-key' and len(w)>3 and w[3]=='delete': return 'destroy'
    if g=='run' and s=='download': return 'local'
    if g=='label' and s=='clone' and '--force' in w: return 'destroy'
    if g in ('issue','pr','release','repo','gist','label','variable','workflow','run','project','cache','ruleset','ssh-key','gpg-key','org'):
        if g=='ruleset' and s=='check': return 'read'
        if g=='gist' and s=='clone': return 'local'
        if g=='extension': return 'local'
        if g=='repo' and s=='create' and any(x.startswith('--clone') for x in w): return 'write'
        return 'write'
    return None
rows=[]
for l in open('src/gh.txt'):
    rel,cmd=l.rstrip('\n').split('\t',1)
    if re.search(r'^gh \S+:',cmd) or '{owner}' in cmd and 'api' not in cmd: pass
    cmd=cmd.replace('{org}','octo').replace('{owner}','octo').replace('{repo}','app')
    c=clean(cmd)
    if not c: continue
    k=cls(c)
    if not k: print('??',c,file=sys.stderr); continue
    rows.append((k,c,f'gh source (cli/cli v2.60.0): {rel} Example'))
with open('out/gh.tsv','w') as f:
    for r in rows: f.write('\t'.join(r)+'\n')
from collections import Counter
print(Counter(r[0] for r in rows),file=sys.stderr)
